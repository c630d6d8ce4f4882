//! The command line: exit codes and messages of `check`, `serve` with a bad config, `token`.

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_switchyard"))
}

fn temp_config(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("switchyard-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    path
}

const BAD: &str = r#"
[server]
listen = "nowhere"
[[providers]]
id = "p"
kind = "openai"
base_url = "ftp://example.com"
[[models]]
id = "m"
provider = "ghost"
[[projects]]
slug = "a"
models = ["m", "missing"]
policies = ["cheapest", "psychic"]
"#;

#[test]
fn check_prints_every_problem_with_its_place_and_exits_2() {
    let path = temp_config("bad", BAD);
    let out = bin()
        .arg("check")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = err.lines().collect();
    for place in [
        "server.listen",
        "providers[0].base_url",
        "models[0].provider",
        "projects[0].models[1]",
        "projects[0].policies[1]",
    ] {
        assert_eq!(
            lines.iter().filter(|l| l.contains(place)).count(),
            1,
            "one line for {place} in:\n{err}"
        );
    }
    assert_eq!(lines.len(), 5, "{err}");
}

#[test]
fn serve_refuses_a_bad_config_with_exit_2() {
    let path = temp_config("serve-bad", BAD);
    let out = bin()
        .arg("serve")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("server.listen"));
    assert!(out.stdout.is_empty(), "nothing may start");
}

#[test]
fn a_syntax_error_names_its_line() {
    let path = temp_config("syntax", "[server\nlisten = 1\n");
    let out = bin()
        .arg("check")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 1"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn check_accepts_a_good_config() {
    let path = temp_config(
        "good",
        "[[providers]]\nid = \"m\"\nkind = \"mock\"\n[[models]]\nid = \"x\"\nprovider = \"m\"\n[[projects]]\nslug = \"p\"\nmodels = [\"x\"]\n",
    );
    let out = bin()
        .arg("check")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok (1 providers, 1 models, 1 projects)"));
}

#[test]
fn token_prints_a_token_and_its_digest() {
    let out = bin().arg("token").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    let token = text
        .lines()
        .find_map(|l| l.strip_prefix("token:"))
        .unwrap()
        .trim();
    let digest = text
        .lines()
        .find_map(|l| l.strip_prefix("digest:"))
        .unwrap()
        .trim();
    assert!(token.starts_with("sk-lr-") && token.len() > 30, "{token}");
    let want: String = switchyard::route::token_digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(digest, format!("sha256:{want}"));
    // Two calls, two tokens.
    let again = String::from_utf8(bin().arg("token").output().unwrap().stdout).unwrap();
    assert_ne!(text, again);
}

#[test]
fn bad_arguments_exit_2() {
    for args in [
        &["frobnicate"][..],
        &["serve", "--workers", "many"],
        &["serve", "--bogus"],
        &["mock-upstream", "--fail-rate", "2"],
        &["check"],
        // The embedded config's dev token must not be reachable beyond loopback.
        &["serve", "--listen", "0.0.0.0:0"],
    ] {
        let out = bin().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?} must say why");
    }
}

#[test]
fn bad_arguments_say_why_in_one_line() {
    for (args, says) in [
        (
            &["serve", "--bogus"][..],
            "switchyard serve: unknown option \"--bogus\"",
        ),
        // A flag of another command is not one of this command's. (Commands that finish at
        // once if the flag were accepted, so a regression fails instead of hanging.)
        (
            &["check", "--config", "/nonexistent", "--ttft-ms", "5"],
            "switchyard check: unknown option \"--ttft-ms\"",
        ),
        (
            &["token", "--listen", "127.0.0.1:0"],
            "unknown option \"--listen\"",
        ),
        (&["check"], "switchyard check: --config FILE is required"),
        (
            &["token", "extra"],
            "switchyard token: unexpected argument \"extra\"",
        ),
        (
            &["mock-upstream", "--listen", "nowhere", "--share-port=yes"],
            "--share-port takes no value",
        ),
        (&["serve", "--listen"], "--listen needs a value"),
        (&[], "switchyard: a command is needed"),
        (
            &["frobnicate"],
            "switchyard: unknown command \"frobnicate\"",
        ),
    ] {
        let out = bin().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

/// The flags each command takes, as its `--help` must list them.
const COMMAND_FLAGS: &[(&str, &[&str])] = &[
    (
        "serve",
        &[
            "--config",
            "--listen",
            "--admin-listen",
            "--workers",
            "--share-port",
        ],
    ),
    (
        "mock-upstream",
        &[
            "--listen",
            "--admin-listen",
            "--workers",
            "--ttft-ms",
            "--tokens-per-s",
            "--reply-tokens",
            "--fail-rate",
            "--share-port",
        ],
    ),
    ("check", &["--config"]),
    ("token", &[]),
];

#[test]
fn every_command_answers_help_and_version() {
    let version = format!("switchyard {}\n", env!("CARGO_PKG_VERSION"));
    for flag in ["--version", "-V"] {
        let out = bin().arg(flag).output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(String::from_utf8_lossy(&out.stdout), version);
    }
    // After other flags too: nothing starts, nothing is checked.
    let out = bin()
        .args(["serve", "--listen", "127.0.0.1:0", "--version"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), version);
    let out = bin()
        .args(["check", "--config", "/nonexistent", "--help"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stderr.is_empty());
    let top = bin().arg("--help").output().unwrap();
    assert_eq!(top.status.code(), Some(0));
    let top = String::from_utf8(top.stdout).unwrap();
    for (cmd, flags) in COMMAND_FLAGS {
        for flag in ["--version", "-V"] {
            let out = bin().args([cmd, flag]).output().unwrap();
            assert_eq!(out.status.code(), Some(0), "{cmd} {flag}");
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                version,
                "{cmd} {flag}"
            );
        }
        for flag in ["--help", "-h"] {
            let out = bin().args([cmd, flag]).output().unwrap();
            assert_eq!(out.status.code(), Some(0), "{cmd} {flag}");
            assert!(out.stderr.is_empty(), "{cmd} {flag}");
            let help = String::from_utf8(out.stdout).unwrap();
            assert!(help.contains(&format!("switchyard {cmd}")), "{help}");
            for f in flags.iter().chain(&["--help", "--version"]) {
                assert!(help.contains(f), "{cmd} --help lacks {f}:\n{help}");
            }
        }
        assert!(top.contains(&format!("switchyard {cmd}")), "{top}");
        for f in *flags {
            assert!(top.contains(f), "switchyard --help lacks {f}:\n{top}");
        }
    }
}

#[test]
fn check_warns_about_plain_tokens_and_keys_serve_could_not_read() {
    let unset = format!("SWITCHYARD_CLI_TEST_UNSET_{}", std::process::id());
    let text = format!(
        r#"
[[providers]]
id = "a"
kind = "openai"
base_url = "https://api.openai.com/v1"
api_key_env = "{unset}"
[[providers]]
id = "b"
kind = "anthropic"
base_url = "https://api.anthropic.com"
api_key_file = "/nonexistent/switchyard/key"
[[providers]]
id = "c"
kind = "openai"
base_url = "https://api.openai.com/v1"
api_key_env = "SWITCHYARD_CLI_TEST_SET"
[[models]]
id = "m"
provider = "a"
[[projects]]
slug = "p"
models = ["m"]
tokens = ["sk-lr-plain"]
"#
    );
    let path = temp_config("warnings", &text);
    let out = bin()
        .args(["check", "--config"])
        .arg(&path)
        .env_remove(&unset)
        .env("SWITCHYARD_CLI_TEST_SET", "sk-set")
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(0), "warnings only: {err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    for (line, place) in lines.iter().zip([
        "projects[0].tokens[0]: plain token",
        &format!("providers[0].api_key_env: environment variable {unset} is not set"),
        "providers[1].api_key_file: cannot read /nonexistent/switchyard/key",
    ]) {
        assert!(
            line.starts_with(&format!("warning: {}: {place}", path.display())),
            "{line}"
        );
    }
    assert!(String::from_utf8_lossy(&out.stdout).contains(": ok (3 providers"));
}
