//! Golden tests of the request translators.
