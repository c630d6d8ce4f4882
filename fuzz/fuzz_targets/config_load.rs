//! The config loader (`Config::parse`: TOML, then `validate`) on arbitrary text, as `serve`,
//! `check` and a SIGHUP reload read an operator's file: never panics, whatever the bytes
//! (out-of-range numbers, odd tables, duplicate ids, unknown enum names); every error line
//! names the file; an accepted config validates clean again, and parsing is deterministic
//! (a reload of an unchanged file gives the same verdict).
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard::config::Config;

const ORIGIN: &str = "fuzz.toml";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let first = Config::parse(text, ORIGIN);
    match &first {
        Ok(cfg) => {
            assert!(cfg.validate().is_empty(), "accepted, then invalid");
            let _ = cfg.warnings();
        }
        Err(errs) => {
            assert!(!errs.0.is_empty(), "refused without a reason");
            for e in &errs.0 {
                assert!(e.starts_with(ORIGIN), "an error line without its file: {e:?}");
                assert!(!e.is_empty());
            }
        }
    }
    let again = Config::parse(text, ORIGIN);
    assert_eq!(
        first.as_ref().map(|_| ()).map_err(|e| &e.0),
        again.as_ref().map(|_| ()).map_err(|e| &e.0),
        "two parses of the same text disagree"
    );
});
