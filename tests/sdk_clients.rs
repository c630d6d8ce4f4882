//! Drives the official `openai` and `anthropic` Python SDKs against the real binary: runs the
//! pytest suite in `tests/sdk/` with `SWITCHYARD_BIN` pointing at the binary cargo built for
//! this test run. The suite starts its own mock-upstream and gateways on port 0.
//!
//! The suite brings its own Python packages: a virtual environment under cargo's target
//! directory (`target/tmp/sdk-venv`), made with `python3 -m venv` and filled from
//! `tests/sdk/requirements.txt` only when that file (or the interpreter) changed since the last
//! install, which a stamp file beside the venv records as a SHA-256. Nothing is installed into
//! the user's Python. Only `python3` (3.9 or later, with its `venv` module) must be on the PATH.
//!
//! Never a silent skip: a missing `python3`, a venv that cannot be made or a failed install
//! fails this test and says why.

mod common;

use common::run_command;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

const REQUIREMENTS: &str = "tests/sdk/requirements.txt";

/// The venv's interpreter, made and filled from the requirements when they changed; the venv
/// is reused as it is otherwise.
fn sdk_venv(root: &Path) -> Result<PathBuf, String> {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let venv = base.join("sdk-venv");
    let stamp = base.join("sdk-venv.stamp");
    let python = venv.join("bin").join("python");
    fs::create_dir_all(base).map_err(|e| format!("cannot create {}: {e}", base.display()))?;

    // Two `cargo test` runs at once (both drivers, say) must not build the venv together.
    let lock_path = base.join("sdk-venv.lock");
    let lock = File::create(&lock_path)
        .map_err(|e| format!("cannot create {}: {e}", lock_path.display()))?;
    lock.lock()
        .map_err(|e| format!("cannot lock {}: {e}", lock_path.display()))?;

    let version = run_command(
        "the SDK suite needs python3 (3.9 or later) on the PATH",
        Command::new("python3").args(["-c", "import sys; print(sys.version)"]),
    )?;
    let requirements = fs::read(root.join(REQUIREMENTS))
        .map_err(|e| format!("cannot read {REQUIREMENTS}: {e}"))?;
    let mut hash = Sha256::new();
    hash.update(&requirements);
    hash.update(&version.stdout);
    let want: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();

    if python.is_file() && fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == want) {
        return Ok(python);
    }
    // A half-made venv or one from another interpreter is started over.
    let _ = fs::remove_file(&stamp);
    if venv.exists() {
        fs::remove_dir_all(&venv)
            .map_err(|e| format!("cannot remove the old {}: {e}", venv.display()))?;
    }
    run_command(
        "cannot make the SDK suite's virtual environment (on Debian: apt-get install python3-venv)",
        Command::new("python3").arg("-m").arg("venv").arg(&venv),
    )?;
    run_command(
        &format!("cannot install {REQUIREMENTS} into {}", venv.display()),
        Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "--no-input"])
            .args(["--disable-pip-version-check", "--require-virtualenv"])
            .args(["-r", REQUIREMENTS])
            .current_dir(root)
            .env("PYTHONNOUSERSITE", "1"),
    )?;
    fs::write(&stamp, format!("{want}\n"))
        .map_err(|e| format!("cannot write {}: {e}", stamp.display()))?;
    Ok(python)
}

#[test]
fn official_sdks_against_the_gateway() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bin = env!("CARGO_BIN_EXE_switchyard");
    let python = sdk_venv(root).unwrap_or_else(|e| panic!("{e}"));
    // The conversation-state tests run each store, Redis's against their own redis-server.
    common::redis_server::ensure_redis_server();

    let out = Command::new(&python)
        .args(["-m", "pytest", "tests/sdk", "-q", "-p", "no:cacheprovider"])
        .current_dir(root)
        .env("SWITCHYARD_BIN", bin)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONNOUSERSITE", "1")
        .env_remove("PYTHONPATH")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    assert!(
        out.status.success(),
        "SDK suite failed ({}):\n--- pytest stdout ---\n{}\n--- pytest stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
