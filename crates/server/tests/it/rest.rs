//! Integration tests: rest.

#[allow(unused_imports)]
use super::common::*;
