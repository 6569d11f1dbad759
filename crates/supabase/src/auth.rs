//! auth (issue #4).
