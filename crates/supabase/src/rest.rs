//! rest (issue #4).
