//! Integration tests: rest.
