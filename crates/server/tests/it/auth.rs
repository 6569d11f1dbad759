//! Integration tests: auth.

#[allow(unused_imports)]
use super::common::*;
