//! Integration tests: realtime.

#[allow(unused_imports)]
use super::common::*;
