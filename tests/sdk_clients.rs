//! Drives the official `openai` and `anthropic` Python SDKs against the real binary: runs the
//! pytest suite in `tests/sdk/` with `SWITCHYARD_BIN` pointing at the binary cargo built for
//! this test run. The suite starts its own mock-upstream and gateways on port 0.
//!
//! The Python side is a hard requirement, never a silent skip: without `python3` or the pinned
//! packages this test fails and says how to install them.

use std::path::Path;
use std::process::Command;

const REQUIREMENTS: &str = "tests/sdk/requirements.txt";

#[test]
fn official_sdks_against_the_gateway() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bin = env!("CARGO_BIN_EXE_switchyard");

    let probe = Command::new("python3")
        .args(["-c", "import openai, anthropic, pytest, httpx"])
        .current_dir(root)
        .output();
    match probe {
        Err(e) => panic!(
            "cannot run python3 ({e}); the SDK suite needs Python 3 with its packages: \
             pip install -r {REQUIREMENTS}"
        ),
        Ok(out) if !out.status.success() => panic!(
            "the SDK suite needs the official openai and anthropic SDKs, pytest and httpx: \
             pip install -r {REQUIREMENTS}\npython3 said:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Ok(_) => {}
    }

    let out = Command::new("python3")
        .args(["-m", "pytest", "tests/sdk", "-q", "-p", "no:cacheprovider"])
        .current_dir(root)
        .env("SWITCHYARD_BIN", bin)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("python3 ran a moment ago");
    assert!(
        out.status.success(),
        "SDK suite failed ({}):\n--- pytest stdout ---\n{}\n--- pytest stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
