//! HTTP/1.1 framing over real sockets, table-driven (RFC 9112 §2, §5, §6, §7).
//!
//! Each case opens one connection to the real gateway (its provider a capture upstream) and
//! plays a script. A rejected request is always sent in the same write as a second, valid
//! request that would reach the upstream: the case passes only if the first answer is the
//! expected error, in the OpenAI error shape with a trace id, the connection then closes with
//! no second answer, and the upstream saw nothing. That is the request-smuggling check: no
//! byte of a rejected request may be taken as the start of another.

mod common;

use common::*;
use std::time::{Duration, Instant};

/// One step of a case's script.
enum Step {
    /// Write these bytes (one write).
    Send(Vec<u8>),
    /// Read a response with this status whose body contains this text.
    Answer(u16, &'static str),
    /// Read an error with this status in the OpenAI shape (`invalid_request_error`), which
    /// says `Connection: close`.
    Reject(u16),
    /// The server closes the connection without sending anything more.
    Closed,
}

struct Case {
    name: &'static str,
    steps: Vec<Step>,
    /// Requests the upstream must receive during the case.
    upstream: usize,
}

const CHAT: &str = "/v1/chat/completions";

fn body() -> String {
    chat_body("gpt-test", false)
}

/// The valid request sent right behind every rejected one; its answer would be 200.
fn valid() -> Vec<u8> {
    post(CHAT, TOKEN, &body(), "")
}

/// A POST head to the chat route with these extra header lines (each ending CRLF) and no
/// framing headers of its own.
fn head(version: &str, extra: &str) -> String {
    format!(
        "POST {CHAT} {version}\r\nHost: gw\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n{extra}\r\n"
    )
}

fn chunked(body: &str) -> String {
    format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len())
}

/// A rejected request: `bad`, then the valid request in the same write.
fn rejected(name: &'static str, bad: Vec<u8>, status: u16) -> Case {
    let mut bytes = bad;
    bytes.extend_from_slice(&valid());
    Case {
        name,
        steps: vec![Step::Send(bytes), Step::Reject(status), Step::Closed],
        upstream: 0,
    }
}

fn cases() -> Vec<Case> {
    let b = body();
    let n = b.len();
    let te_body = chunked(&b);
    let with = |extra: String, payload: &str| -> Vec<u8> {
        let mut v = head("HTTP/1.1", &extra).into_bytes();
        v.extend_from_slice(payload.as_bytes());
        v
    };
    let big_chunk = 0x11000; // 69632 > max_body_bytes (65536)
    let mut cases = vec![
        // RFC 9112 §6.3 rule 3: both framings at once.
        rejected(
            "CL+TE",
            with(
                format!("Content-Length: {}\r\nTransfer-Encoding: chunked\r\n", te_body.len()),
                &te_body,
            ),
            400,
        ),
        rejected(
            "TE+CL",
            with(
                format!("Transfer-Encoding: chunked\r\nContent-Length: {}\r\n", te_body.len()),
                &te_body,
            ),
            400,
        ),
        // RFC 9110 §8.6: one Content-Length, 1*DIGIT.
        rejected(
            "duplicate CL, same value",
            with(format!("Content-Length: {n}\r\nContent-Length: {n}\r\n"), &b),
            400,
        ),
        rejected(
            "duplicate CL, different values",
            with(format!("Content-Length: {n}\r\nContent-Length: {}\r\n", n + 1), &b),
            400,
        ),
        rejected("CL +N", with(format!("Content-Length: +{n}\r\n"), &b), 400),
        rejected("CL -1", with("Content-Length: -1\r\n".into(), &b), 400),
        rejected("CL 0x5", with("Content-Length: 0x5\r\n".into(), &b), 400),
        rejected("CL 5,5", with("Content-Length: 5,5\r\n".into(), &b), 400),
        rejected("CL empty", with("Content-Length: \r\n".into(), &b), 400),
        // RFC 9112 §6.1: chunked, once, last; nothing on HTTP/1.0.
        rejected(
            "TE gzip",
            with("Transfer-Encoding: gzip\r\n".into(), &te_body),
            400,
        ),
        rejected(
            "TE chunked, gzip",
            with("Transfer-Encoding: chunked, gzip\r\n".into(), &te_body),
            400,
        ),
        rejected(
            "TE chunked, chunked",
            with("Transfer-Encoding: chunked, chunked\r\n".into(), &te_body),
            400,
        ),
        rejected(
            "TE on HTTP/1.0",
            {
                let mut v = head("HTTP/1.0", "Transfer-Encoding: chunked\r\n").into_bytes();
                v.extend_from_slice(te_body.as_bytes());
                v
            },
            400,
        ),
        // RFC 9112 §7.1: chunk framing.
        rejected(
            "bad chunk-size line",
            with(
                "Transfer-Encoding: chunked\r\n".into(),
                &format!("xyz\r\n{b}\r\n0\r\n\r\n"),
            ),
            400,
        ),
        rejected(
            "no CRLF after chunk data",
            with(
                "Transfer-Encoding: chunked\r\n".into(),
                &format!("{n:x}\r\n{b}0\r\n\r\n"),
            ),
            400,
        ),
        // RFC 9112 §2.2, §5.1, §5.2, §2.3, §3.2: the head itself.
        rejected(
            "bare LF in head",
            format!(
                "POST {CHAT} HTTP/1.1\r\nHost: gw\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {n}\r\n\r\n{b}"
            )
            .into_bytes(),
            400,
        ),
        rejected(
            "obs-fold",
            with(format!("X-Folded: a\r\n b\r\nContent-Length: {n}\r\n"), &b),
            400,
        ),
        rejected(
            "space before colon",
            with(format!("Content-Length : {n}\r\n"), &b),
            400,
        ),
        rejected(
            "HTTP/2.0 version line",
            format!(
                "POST {CHAT} HTTP/2.0\r\nHost: gw\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {n}\r\n\r\n{b}"
            )
            .into_bytes(),
            400,
        ),
        rejected(
            "missing Host on HTTP/1.1",
            format!(
                "POST {CHAT} HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {n}\r\n\r\n{b}"
            )
            .into_bytes(),
            400,
        ),
        // Limits.
        rejected(
            "head over max_header_bytes",
            with(
                format!("X-Big: {}\r\nContent-Length: {n}\r\n", "a".repeat(5000)),
                &b,
            ),
            431,
        ),
        rejected(
            "CL over max_body_bytes",
            // No body follows: a server that waited for it would take the next request as body.
            with("Content-Length: 100000\r\n".into(), ""),
            413,
        ),
        rejected(
            "chunked body growing over max_body_bytes",
            with(
                "Transfer-Encoding: chunked\r\n".into(),
                &format!("{big_chunk:x}\r\n{}\r\n0\r\n\r\n", "a".repeat(big_chunk)),
            ),
            413,
        ),
    ];

    // Positive cases.
    let (p1, p2) = b.split_at(n / 2);
    let mut chunked_ext = head(
        "HTTP/1.1",
        "Transfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n",
    )
    .into_bytes();
    chunked_ext.extend_from_slice(
        format!(
            "{:x};ext=1\r\n{p1}\r\n{:X};name=\"quoted value\"\r\n{p2}\r\n0\r\nX-Checksum: abc\r\n\r\n",
            p1.len(),
            p2.len()
        )
        .as_bytes(),
    );
    chunked_ext.extend_from_slice(&valid());
    cases.push(Case {
        name: "valid chunked body with extensions and trailers",
        steps: vec![
            Step::Send(chunked_ext),
            Step::Answer(200, "chat.completion"),
            Step::Answer(200, "chat.completion"),
        ],
        upstream: 2,
    });

    let mut pipelined = valid();
    pipelined.extend_from_slice(&get("/v1/nope", TOKEN));
    pipelined.extend_from_slice(&get("/v1/models", TOKEN));
    cases.push(Case {
        name: "pipelined requests are answered in order",
        steps: vec![
            Step::Send(pipelined),
            Step::Answer(200, "chat.completion"),
            Step::Answer(404, "not_found_error"),
            Step::Answer(200, "\"object\":\"list\""),
        ],
        upstream: 1,
    });

    cases.push(Case {
        name: "Expect: 100-continue",
        steps: vec![
            Step::Send(
                head(
                    "HTTP/1.1",
                    &format!("Expect: 100-continue\r\nContent-Length: {n}\r\n"),
                )
                .into_bytes(),
            ),
            Step::Answer(100, ""),
            Step::Send(b.clone().into_bytes()),
            Step::Answer(200, "chat.completion"),
        ],
        upstream: 1,
    });

    cases.push(Case {
        name: "keep-alive: three requests on one connection",
        steps: vec![
            Step::Send(valid()),
            Step::Answer(200, "chat.completion"),
            Step::Send(valid()),
            Step::Answer(200, "chat.completion"),
            Step::Send(valid()),
            Step::Answer(200, "chat.completion"),
        ],
        upstream: 3,
    });

    let mut http10 = head("HTTP/1.0", &format!("Content-Length: {n}\r\n")).into_bytes();
    http10.extend_from_slice(b.as_bytes());
    http10.extend_from_slice(&valid());
    cases.push(Case {
        name: "HTTP/1.0 without keep-alive closes after one answer",
        steps: vec![
            Step::Send(http10),
            Step::Answer(200, "chat.completion"),
            Step::Closed,
        ],
        upstream: 1,
    });
    cases
}

/// Plays one case; `Err` says what went wrong.
fn play(gw: &Server, capture: &Capture, case: &Case) -> Result<(), String> {
    let before = capture.requests().len();
    let mut c = gw.connect();
    for (i, step) in case.steps.iter().enumerate() {
        match step {
            Step::Send(bytes) => {
                // A server that rejects early may close before reading everything; what it
                // answered is still readable, so a failed write is not the verdict.
                let _ = c.send(bytes);
            }
            Step::Answer(status, needle) => {
                let r = c
                    .read_response()
                    .map_err(|e| format!("step {i}: {}", describe(&e)))?;
                if r.status != *status || !contains(&r.body, needle.as_bytes()) {
                    return Err(format!(
                        "step {i}: want {status} with {needle:?}, got:\n{}",
                        r.dump()
                    ));
                }
                if *status == 100 {
                    if !r.raw_head.starts_with(b"HTTP/1.1 100 Continue\r\n") {
                        return Err(format!("step {i}: interim answer is {:?}", r.dump()));
                    }
                } else {
                    let id = r
                        .header("x-routerly-trace-id")
                        .ok_or_else(|| format!("step {i}: no trace id:\n{}", r.dump()))?;
                    assert_uuid_v7(id);
                }
            }
            Step::Reject(status) => {
                let r = c
                    .read_response()
                    .map_err(|e| format!("step {i}: {}", describe(&e)))?;
                if r.status != *status {
                    return Err(format!("step {i}: want {status}, got:\n{}", r.dump()));
                }
                assert_error(&r, *status, Shape::OpenAi, "invalid_request_error");
                if !r.says_close() {
                    return Err(format!(
                        "step {i}: the error does not say Connection: close:\n{}",
                        r.dump()
                    ));
                }
            }
            Step::Closed => {
                if let Err(more) = c.expect_closed() {
                    return Err(format!(
                        "step {i}: connection not closed; then received {:?}",
                        String::from_utf8_lossy(&more)
                    ));
                }
            }
        }
    }
    let seen = capture.requests().len() - before;
    if seen != case.upstream {
        return Err(format!(
            "the upstream received {seen} requests, want {}",
            case.upstream
        ));
    }
    Ok(())
}

#[test]
fn framing_table() {
    let capture = Capture::ok();
    let gw = gateway_over(&capture);
    let mut failures = Vec::new();
    let cases = cases();
    for case in &cases {
        if let Err(why) = play(&gw, &capture, case) {
            failures.push(format!("[{}] {why}", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} framing cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

#[test]
fn upstream_body_of_a_chunked_request_is_the_decoded_body() {
    let capture = Capture::ok();
    let gw = gateway_over(&capture);
    let b = body();
    let (p1, p2) = b.split_at(10);
    let mut req = head("HTTP/1.1", "Transfer-Encoding: chunked\r\n").into_bytes();
    req.extend_from_slice(
        format!(
            "{:x};a=b\r\n{p1}\r\n{:x}\r\n{p2}\r\n0\r\nX-T: 1\r\n\r\n",
            p1.len(),
            p2.len()
        )
        .as_bytes(),
    );
    let r = roundtrip(gw.addr, &req);
    assert_eq!(r.status, 200, "{}", r.dump());
    let seen = capture.requests();
    assert_eq!(seen.len(), 1);
    let want = b.replace("\"gpt-test\"", "\"gpt-upstream\"");
    assert_eq!(String::from_utf8_lossy(&seen[0].body), want);
    assert!(
        !seen[0]
            .head
            .to_ascii_lowercase()
            .contains("transfer-encoding"),
        "the upstream request should be re-framed with Content-Length:\n{}",
        seen[0].head
    );
}

#[test]
fn header_timeout_answers_408_or_closes() {
    let capture = Capture::ok();
    let gw = gateway_over(&capture);
    let header_timeout = Duration::from_millis(1500); // standard_config
    let mut c = gw.connect();
    c.set_read_timeout(Duration::from_secs(5));
    let start = Instant::now();
    c.send(
        format!("POST {CHAT} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {TOKEN}\r\n").as_bytes(),
    )
    .expect("send partial head");
    let got = c.read_response();
    let elapsed = start.elapsed();
    match got {
        Ok(r) => {
            assert_error(&r, 408, Shape::OpenAi, "invalid_request_error");
            c.expect_closed()
                .unwrap_or_else(|b| panic!("open after 408; got {b:?}"));
        }
        Err(ReadError::Closed) => {}
        Err(e) => panic!("neither 408 nor close: {}", describe(&e)),
    }
    assert!(
        elapsed >= header_timeout - Duration::from_millis(100),
        "answered after {elapsed:?}, before the header timeout of {header_timeout:?}"
    );
    assert!(
        elapsed < Duration::from_secs(4),
        "took {elapsed:?} for a header timeout of {header_timeout:?}"
    );
    assert!(capture.requests().is_empty());
}

#[test]
fn head_trickled_slowly_is_cut_at_header_timeout_not_reset_per_byte() {
    // The deadline covers the whole head: bytes arriving in time must not extend it.
    let capture = Capture::ok();
    let gw = gateway_over(&capture);
    let mut c = gw.connect();
    let start = Instant::now();
    let head = format!("POST {CHAT} HTTP/1.1\r\nHost: gw\r\nX-Slow: ");
    c.send(head.as_bytes()).expect("send");
    // Keep sending one byte per read-timeout tick until the server gives up; the pacing is
    // the server's: each round waits for its answer or close with a short read timeout.
    c.set_read_timeout(Duration::from_millis(200));
    let outcome = loop {
        match c.read_response() {
            Ok(r) => break Ok(r),
            Err(ReadError::Timeout(_)) => {
                if start.elapsed() > Duration::from_secs(5) {
                    break Err("still open after 5 s of trickling".to_string());
                }
                if c.send(b"a").is_err() {
                    break Err("write failed".to_string());
                }
            }
            Err(ReadError::Closed) => break Err("closed".to_string()),
            Err(e) => break Err(describe(&e)),
        }
    };
    let elapsed = start.elapsed();
    match outcome {
        Ok(r) => assert_eq!(r.status, 408, "{}", r.dump()),
        Err(why) => assert!(why == "closed" || why == "write failed", "{why}"),
    }
    assert!(
        elapsed < Duration::from_millis(3000),
        "a trickled head lived {elapsed:?}, header_timeout is 1500 ms"
    );
}
