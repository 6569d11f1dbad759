//! Integration tests: the realtime client against the local backend in-process on
//! 127.0.0.1:0 — directly, and through the fault-injecting proxy for reliability. No wire
//! mocks. Every wait is bounded (`harness::WAIT`); "nothing more arrives" listens for
//! `harness::QUIET`.

mod harness;

mod auth;
mod backoff;
mod basics;
mod faults;
mod presence;
mod tls;
