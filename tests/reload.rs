//! SIGHUP reloads the config: a good one is swapped in for new requests, a bad one is refused
//! and the running snapshot kept.

mod common;

use common::{chat_body, post, roundtrip, Server, CHAT};

fn config(token: &str) -> String {
    format!(
        r#"[server]
listen = "127.0.0.1:0"
admin_listen = ""
workers = 2
[[providers]]
id = "mock"
kind = "mock"
[[models]]
id = "m1"
provider = "mock"
[[projects]]
slug = "p"
tokens = ["{token}"]
models = ["m1"]
"#
    )
}

fn status(gw: &Server, token: &str) -> u16 {
    roundtrip(gw.addr, &post(CHAT, token, &chat_body("m1", false), "")).status
}

#[test]
fn sighup_swaps_a_good_config_and_keeps_the_running_one_on_a_bad_one() {
    let gw = Server::serve(&config("sk-lr-old"), &[]);
    let path = gw.stderr_path.parent().unwrap().join("switchyard.toml");
    assert!(
        path.exists(),
        "the harness writes the config at {}",
        path.display()
    );
    assert_eq!(status(&gw, "sk-lr-old"), 200);
    assert_eq!(status(&gw, "sk-lr-new"), 401);

    std::fs::write(&path, config("sk-lr-new")).unwrap();
    gw.signal(libc::SIGHUP);
    gw.wait_log("the reload", |l| l.contains("reloaded"));
    // Both workers see the new snapshot: several requests, spread over connections.
    for _ in 0..6 {
        assert_eq!(status(&gw, "sk-lr-new"), 200);
        assert_eq!(status(&gw, "sk-lr-old"), 401);
    }

    std::fs::write(&path, "[server\nbroken").unwrap();
    gw.signal(libc::SIGHUP);
    let line = gw.wait_log("the refusal", |l| l.contains("reload refused"));
    assert!(line.contains("line"), "the refusal says where: {line}");
    for _ in 0..4 {
        assert_eq!(status(&gw, "sk-lr-new"), 200, "the running config stays");
    }
}
