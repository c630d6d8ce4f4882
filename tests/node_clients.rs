//! Drives the official `openai` and `@anthropic-ai/sdk` Node SDKs and the Vercel AI SDK against
//! the real binary: runs `node --test` on the `*.test.mjs` files in `tests/node/` with
//! `SWITCHYARD_BIN` pointing at the binary cargo built for this test run. Each file starts its
//! own gateway on port 0 (embedded default config) and stops it at its end.
//!
//! The suite brings its own packages: `npm ci` from the committed `tests/node/package-lock.json`
//! into `tests/node/node_modules`, run only when that folder is missing or older than the lock
//! file (npm's own record of an install, `node_modules/.package-lock.json`, says when it was
//! made). Nothing is installed globally. Only `node` (20 or later) and `npm` must be on the PATH.
//!
//! Never a silent skip: a missing `node` or `npm`, a failed install or a failed test fails this
//! test with what node and npm printed.

mod common;

use common::run_command;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::SystemTime;

const NODE_DIR: &str = "tests/node";

fn modified(path: &Path) -> Option<SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// `npm ci` unless `node_modules` was installed after the lock file last changed.
fn install(dir: &Path) -> Result<(), String> {
    let lock = modified(&dir.join("package-lock.json"))
        .ok_or_else(|| format!("{NODE_DIR}/package-lock.json is missing"))?;
    let installed = modified(&dir.join("node_modules").join(".package-lock.json"));
    if installed.is_some_and(|t| t >= lock) {
        return Ok(());
    }
    run_command(
        "the Node client suite needs npm on the PATH to install its packages",
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(dir)
            .env("npm_config_update_notifier", "false"),
    )?;
    Ok(())
}

#[test]
fn node_sdks_against_the_gateway() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(NODE_DIR);
    let bin = env!("CARGO_BIN_EXE_switchyard");

    if let Err(e) = run_command(
        "the Node client suite needs node (20 or later) on the PATH",
        Command::new("node").arg("--version"),
    ) {
        panic!("{e}");
    }
    install(&dir).unwrap_or_else(|e| panic!("{e}"));

    let mut files: Vec<String> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {NODE_DIR}: {e}"))
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".test.mjs"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no *.test.mjs files in {NODE_DIR}");

    // One file at a time: each starts a gateway, and the machines are small.
    let out = Command::new("node")
        .args(["--test", "--test-concurrency=1"])
        .args(&files)
        .current_dir(&dir)
        .env("SWITCHYARD_BIN", bin)
        .env_remove("NODE_OPTIONS")
        .output()
        .unwrap_or_else(|e| panic!("cannot run node: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "Node client suite failed ({}):\n--- node stdout ---\n{stdout}\n--- node stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let ran = stdout
        .lines()
        .find_map(|l| l.strip_prefix("# tests "))
        .and_then(|n| n.trim().parse::<u32>().ok());
    assert!(ran.is_some_and(|n| n > 0), "node ran no test:\n{stdout}");
    // The summary, so a passing run's captured output says what ran.
    for line in stdout.lines().filter(|l| l.starts_with("# ")) {
        println!("{line}");
    }
}
