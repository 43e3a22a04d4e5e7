//! The one place that decides what happens next in a session's life.
