//! Upstream TLS against a local rustls server with certificates generated at test time: a
//! private CA (given to the gateway as `ca_file`) and leaves signed by it — one for
//! `localhost`, one expired, one for another host name. The server records the SNI and ALPN
//! offers it receives and how each handshake ended, and answers over HTTP/1.1 keep-alive as an
//! OpenAI provider would.
//!
//! Also here: the shipped `examples/real-providers.toml` passes `switchyard check`.

mod common;

use common::*;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use std::path::PathBuf;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// How long a test waits for the TLS server's report on a handshake.
const REPORT_WAIT: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------------------------
// Certificates

/// A CA: its certificate (PEM for `ca_file`) and key, to sign leaves with.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().expect("CA key");
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = p.self_signed(&key).expect("self-sign CA");
        Ca { cert, key }
    }

    /// Writes the CA certificate as PEM into a fresh temp dir; returns the file.
    fn pem_file(&self) -> PathBuf {
        let path = temp_dir("ca").join("ca.pem");
        std::fs::write(&path, self.cert.pem()).expect("write CA PEM");
        path
    }

    /// A server certificate for `names` (DNS names or IP literals) signed by this CA;
    /// `expired` puts its validity entirely in the past.
    fn leaf(&self, names: &[&str], expired: bool) -> Leaf {
        let key = KeyPair::generate().expect("leaf key");
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut p = CertificateParams::new(names).expect("leaf params");
        p.distinguished_name
            .push(DnType::CommonName, "switchyard test upstream");
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if expired {
            p.not_before = rcgen::date_time_ymd(2020, 1, 1);
            p.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let cert = p.signed_by(&key, &self.cert, &self.key).expect("sign leaf");
        Leaf {
            cert: cert.der().clone(),
            key: PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
        }
    }
}

/// A server certificate and its private key.
struct Leaf {
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
}

// ---------------------------------------------------------------------------------------------
// The TLS upstream

/// What a ClientHello offered.
#[derive(Debug, Clone)]
struct Hello {
    sni: Option<String>,
    alpn: Vec<Vec<u8>>,
}

/// Serves the one certificate and records every ClientHello's SNI and ALPN offer.
#[derive(Debug)]
struct Recorder {
    key: Arc<CertifiedKey>,
    hellos: Mutex<Vec<Hello>>,
}

impl ResolvesServerCert for Recorder {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let h = Hello {
            sni: hello.server_name().map(str::to_string),
            alpn: hello
                .alpn()
                .map(|it| it.map(<[u8]>::to_vec).collect())
                .unwrap_or_default(),
        };
        self.hellos
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(h);
        Some(self.key.clone())
    }
}

/// How one handshake ended, as the server saw it.
#[derive(Debug)]
enum Handshake {
    /// Completed: the SNI and the ALPN protocol negotiated.
    Done {
        sni: Option<String>,
        alpn: Option<Vec<u8>>,
        /// The client resumed an earlier session (TLS 1.3 ticket) instead of a full handshake.
        resumed: bool,
    },
    /// Failed; rustls's reason (for a refused certificate, the client's alert).
    Failed(String),
}

struct TlsUpstream {
    up: Capture,
    recorder: Arc<Recorder>,
    handshakes: mpsc::Receiver<Handshake>,
}

impl TlsUpstream {
    /// A TLS upstream on 127.0.0.1:0 presenting `leaf`. It offers ALPN `h2` before
    /// `http/1.1`, so a client that offered `h2` would be given it.
    fn start(leaf: Leaf) -> TlsUpstream {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let signing = provider
            .key_provider
            .load_private_key(leaf.key)
            .expect("load leaf key");
        let recorder = Arc::new(Recorder {
            key: Arc::new(CertifiedKey::new(vec![leaf.cert], signing)),
            hellos: Mutex::new(Vec::new()),
        });
        let mut cfg = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_cert_resolver(recorder.clone());
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let cfg = Arc::new(cfg);
        let (tx, rx) = mpsc::channel::<Handshake>();
        let up = Capture::accepting(move |mut tcp, tap| {
            let Ok(mut conn) = ServerConnection::new(cfg.clone()) else {
                return;
            };
            while conn.is_handshaking() {
                if let Err(e) = conn.complete_io(&mut tcp) {
                    let _ = tx.send(Handshake::Failed(e.to_string()));
                    return;
                }
            }
            let _ = tx.send(Handshake::Done {
                sni: conn.server_name().map(str::to_string),
                alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
                resumed: conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
            });
            tap.wrap(StreamOwned::new(conn, tcp)).serve_openai();
        });
        TlsUpstream {
            up,
            recorder,
            handshakes: rx,
        }
    }

    /// `https://localhost:PORT/v1`: the name the certificates are checked against.
    fn base_url(&self) -> String {
        format!("https://localhost:{}/v1", self.up.addr.port())
    }

    fn hellos(&self) -> Vec<Hello> {
        self.recorder
            .hellos
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn next_handshake(&self) -> Handshake {
        self.handshakes
            .recv_timeout(REPORT_WAIT)
            .expect("the TLS upstream saw no handshake")
    }
}

fn gateway_for(up: &TlsUpstream, ca_file: Option<&PathBuf>) -> Server {
    let mut lines = format!(
        "base_url = \"{}\"\nconnect_timeout_ms = 5000",
        up.base_url()
    );
    if let Some(p) = ca_file {
        lines.push_str(&format!("\nca_file = {}", toml_path(p)));
    }
    Server::serve(&one_provider_config(&lines), &key_env())
}

fn good_localhost() -> (Ca, PathBuf, TlsUpstream) {
    let ca = Ca::new("Switchyard Test CA");
    let pem = ca.pem_file();
    let up = TlsUpstream::start(ca.leaf(&["localhost", "127.0.0.1"], false));
    (ca, pem, up)
}

/// The handshake completed with SNI `localhost` and ALPN `http/1.1`, and the client offered
/// exactly `http/1.1` (never `h2`).
fn assert_sni_and_alpn(up: &TlsUpstream) {
    match up.next_handshake() {
        Handshake::Done { sni, alpn, .. } => {
            assert_eq!(sni.as_deref(), Some("localhost"), "SNI received");
            assert_eq!(
                alpn.as_deref(),
                Some(&b"http/1.1"[..]),
                "ALPN negotiated: {:?}",
                alpn.as_ref()
                    .map(|a| String::from_utf8_lossy(a).into_owned())
            );
        }
        Handshake::Failed(why) => panic!("handshake failed on the server: {why}"),
    }
    let hellos = up.hellos();
    assert!(!hellos.is_empty(), "no ClientHello recorded");
    for h in &hellos {
        assert_eq!(h.sni.as_deref(), Some("localhost"), "SNI offered: {h:?}");
        assert_eq!(h.alpn, vec![b"http/1.1".to_vec()], "ALPN offered: {h:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Success

#[test]
fn tls_upstream_with_ca_file_serves_a_completion_intact() {
    let (_ca, pem, up) = good_localhost();
    let gw = gateway_for(&up, Some(&pem));
    assert_chat_json(&gw.chat("m1", false), "over TLS");
    assert_sni_and_alpn(&up);
    let reqs = up.up.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].request_line(), "POST /v1/chat/completions HTTP/1.1");
    assert_eq!(
        reqs[0].header("host"),
        Some(format!("localhost:{}", up.up.addr.port()).as_str())
    );
}

#[test]
fn tls_upstream_with_ca_file_streams_intact_after_the_trace_event() {
    let (_ca, pem, up) = good_localhost();
    let gw = gateway_for(&up, Some(&pem));
    let r = gw.chat("m1", true);
    assert_eq!(r.status, 200, "{}", r.dump());
    assert!(
        r.header("content-type")
            .is_some_and(|v| v.starts_with("text/event-stream")),
        "{}",
        r.dump()
    );
    let text = r.text();
    assert!(
        text.starts_with("data: {\"type\":\"trace\""),
        "the stream does not start with the trace event: {text}"
    );
    assert!(
        text.ends_with(&SSE_EVENTS.concat()),
        "upstream events not relayed intact: {text}"
    );
    assert_sni_and_alpn(&up);
}

#[test]
fn tls_upstream_connections_are_pooled() {
    let (_ca, pem, up) = good_localhost();
    let gw = gateway_for(&up, Some(&pem));
    for i in 0..3 {
        let r = gw.chat("m1", i % 2 == 1);
        assert_eq!(r.status, 200, "request {i}: {}", r.dump());
    }
    assert_eq!(
        up.up.connections(),
        1,
        "3 sequential requests needed more than one TLS connection"
    );
    assert_eq!(up.up.requests().len(), 3);
    assert_eq!(gw.metric("switchyard_upstream_connects_total"), 1);
    assert_eq!(gw.metric("switchyard_upstream_reused_total"), 2);
}

/// With pooling off (`max_idle_per_worker = 0`) every request opens a new TLS connection; the
/// worker's one client config per provider keeps the session tickets, so every handshake after
/// the first resumes instead of repeating the full exchange.
#[test]
fn new_tls_connections_resume_the_workers_session() {
    let (_ca, pem, up) = good_localhost();
    let lines = format!(
        "base_url = \"{}\"\nca_file = {}\nmax_idle_per_worker = 0",
        up.base_url(),
        toml_path(&pem)
    );
    let gw = Server::serve(&one_provider_config(&lines), &key_env());
    let mut resumed = Vec::new();
    for i in 0..3 {
        let r = gw.chat("m1", false);
        assert_eq!(r.status, 200, "request {i}: {}", r.dump());
        match up.next_handshake() {
            Handshake::Done { resumed: r, .. } => resumed.push(r),
            Handshake::Failed(why) => panic!("handshake {i} failed: {why}"),
        }
    }
    assert_eq!(
        up.up.connections(),
        3,
        "pooling is off: one connection per request"
    );
    assert_eq!(
        resumed,
        [false, true, true],
        "handshakes after the first resume"
    );
}

/// Two providers on the same host, one trusting the test CA and one not: a connection the first
/// verified and pooled must never carry the second's request (the pool key includes the trust
/// roots), so the second is refused as a TLS failure even right after the first succeeded.
#[test]
fn a_pooled_connection_never_serves_a_provider_without_its_trust() {
    let (_ca, pem, up) = good_localhost();
    let config = format!(
        r#"[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
workers = 1
[[providers]]
id = "trusting"
kind = "openai"
base_url = "{url}"
ca_file = {pem}
api_key_env = "TEST_OPENAI_KEY"
[[providers]]
id = "untrusting"
kind = "openai"
base_url = "{url}"
api_key_env = "TEST_OPENAI_KEY"
[[models]]
id = "good"
provider = "trusting"
[[models]]
id = "bad"
provider = "untrusting"
[[projects]]
slug = "p"
tokens = ["{TOKEN}"]
models = ["good"]
[[projects]]
slug = "q"
tokens = ["{TOKEN}"]
models = ["bad"]
"#,
        url = up.base_url(),
        pem = toml_path(&pem)
    );
    let gw = Server::serve(&config, &key_env());
    assert_eq!(gw.chat("good", false).status, 200);
    assert!(matches!(up.next_handshake(), Handshake::Done { .. }));
    let r = roundtrip(
        gw.addr,
        &post(
            "/projects/q/v1/chat/completions",
            TOKEN,
            &chat_body("bad", false),
            "",
        ),
    );
    assert_error(&r, 502, Shape::OpenAi, "api_error");
    assert!(matches!(up.next_handshake(), Handshake::Failed(_)));
    assert_eq!(
        up.up.requests().len(),
        1,
        "only the trusting provider's request got through"
    );
}

// ---------------------------------------------------------------------------------------------
// Refused certificates

/// The request fails with 502 `api_error`, nothing reached the upstream as HTTP, the server
/// saw the handshake fail, and the gateway logged a line naming the TLS failure and `why`.
fn assert_refused(up: &TlsUpstream, gw: &Server, why: &str) {
    let r = gw.chat("m1", false);
    assert_eq!(r.status, 502, "{}", r.dump());
    assert_eq!(openai_error_type(&r), "api_error", "{}", r.dump());
    match up.next_handshake() {
        Handshake::Failed(_) => {}
        Handshake::Done { .. } => panic!("the server completed a handshake the client must refuse"),
    }
    assert!(
        up.up.requests().is_empty(),
        "a request was sent over an unverified connection"
    );
    let line = gw.wait_log("naming the TLS handshake failure", |l| {
        l.contains("TLS handshake") && l.contains("failed")
    });
    assert!(
        line.to_ascii_lowercase()
            .contains(&why.to_ascii_lowercase()),
        "the TLS log line does not say {why:?}: {line}"
    );
}

#[test]
fn tls_without_the_ca_file_is_refused_as_unknown_issuer() {
    let (_ca, _pem, up) = good_localhost();
    let gw = gateway_for(&up, None);
    assert_refused(&up, &gw, "UnknownIssuer");
}

#[test]
fn tls_with_another_ca_file_is_refused_as_unknown_issuer() {
    let (_ca, _pem, up) = good_localhost();
    let other = Ca::new("Some Other CA").pem_file();
    let gw = gateway_for(&up, Some(&other));
    assert_refused(&up, &gw, "UnknownIssuer");
}

#[test]
fn tls_certificate_for_another_host_is_refused() {
    let ca = Ca::new("Switchyard Test CA");
    let pem = ca.pem_file();
    let up = TlsUpstream::start(ca.leaf(&["other.example"], false));
    let gw = gateway_for(&up, Some(&pem));
    assert_refused(&up, &gw, "not valid for name");
}

#[test]
fn tls_expired_certificate_is_refused() {
    let ca = Ca::new("Switchyard Test CA");
    let pem = ca.pem_file();
    let up = TlsUpstream::start(ca.leaf(&["localhost", "127.0.0.1"], true));
    let gw = gateway_for(&up, Some(&pem));
    assert_refused(&up, &gw, "expired");
}

// ---------------------------------------------------------------------------------------------
// The shipped example config

#[test]
fn real_providers_example_passes_check() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/real-providers.toml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["check", "--config", path])
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY")
        .output()
        .expect("run switchyard check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "check failed:\nstdout: {stdout}\nstderr: {stderr}"
    );
    assert!(
        stdout.contains("ok (2 providers, 4 models, 1 projects)"),
        "unexpected summary: {stdout}"
    );
}
