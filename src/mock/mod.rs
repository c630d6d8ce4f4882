//! The built-in mock provider.
