//! Integration tests of the local backend: one binary (to keep link time down), one module per
//! service. Every test starts a real server in-process on 127.0.0.1:0 with a temp data dir.

mod common;

mod auth;
mod cli;
mod demo;
mod guard;
mod realtime;
mod rest;
