//! The hand-written tensor runtime.
