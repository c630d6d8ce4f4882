//! Running the client suites' tools (python, pip, npm, node) to completion.

use std::process::{Command, Output};

/// Runs a command to completion; `Err` says what ran and what it printed.
pub fn run_command(what: &str, cmd: &mut Command) -> Result<Output, String> {
    match cmd.output() {
        Err(e) => Err(format!("{what}: cannot run {cmd:?}: {e}")),
        Ok(out) if !out.status.success() => Err(format!(
            "{what}: {cmd:?} failed ({})\n--- stdout ---\n{}\n--- stderr ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )),
        Ok(out) => Ok(out),
    }
}
