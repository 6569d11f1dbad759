//! realtime (issue #4).
