//! Strict HTTP/1.1 parsing around httparse.
