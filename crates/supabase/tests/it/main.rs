//! Integration tests of the Supabase client against the real local backend in-process on
//! 127.0.0.1:0 (and through the fault proxy); one binary, one module per part.

mod auth;
mod common;
mod realtime;
mod rest;
