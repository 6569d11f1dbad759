//! A fault-injecting TCP proxy for reliability tests (to be written with issue #4).
