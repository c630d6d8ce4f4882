//! Headless Chromium from Debian's packages, for tests that render a page the project writes
//! (the bench's HTML report). Installed with apt-get when `/usr/bin/chromium` is missing, once
//! per process (the tests run as root on a fresh machine, as CI does).

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

/// Where Debian's package puts the browser.
pub const CHROMIUM: &str = "/usr/bin/chromium";

const INSTALL: &str = "set -e
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=300 update -qq
apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends chromium
";

/// Makes sure Chromium is installed, installing it when missing.
pub fn ensure_chromium() {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    let r = DONE.get_or_init(|| {
        if Path::new(CHROMIUM).exists() {
            return Ok(());
        }
        eprintln!("{CHROMIUM} is missing: installing chromium with apt-get");
        let out = Command::new("sh")
            .arg("-c")
            .arg(INSTALL)
            .output()
            .map_err(|e| format!("cannot run sh: {e}"))?;
        if !out.status.success() || !Path::new(CHROMIUM).exists() {
            return Err(format!(
                "installing chromium failed ({}); install it by hand (apt-get install chromium)\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(())
    });
    if let Err(e) = r {
        panic!("{e}");
    }
}

/// The DOM of `page` after its scripts ran, with every network request sent to a proxy that
/// does not exist (so a page that needed the network would not draw).
pub fn dump_dom(page: &Path) -> String {
    ensure_chromium();
    let profile = page.with_extension("chromium-profile");
    let out = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--proxy-server=127.0.0.1:9",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
