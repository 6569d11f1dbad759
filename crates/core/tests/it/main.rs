//! Integration tests of `ruwad-core` against the real local backend, in-process on a loopback
//! port (one binary: see CONVENTIONS.md). Network outages are made by stopping and restarting
//! the server on the same port and data dir; the crash test re-executes this binary as a child
//! process and kills it with SIGKILL.

mod common;
mod crash;
mod delivery;
mod docs;
mod interop;
mod live;
mod store;
mod sync;
