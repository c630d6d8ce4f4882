//! Top-level JSON key scanning in place.
