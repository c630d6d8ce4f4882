//! `parse_response_head` on arbitrary bytes: never panics, and a parsed head is consistent
//! (status range, spans in bounds, framing per RFC 9112 §6.3 with every ambiguity refused,
//! the same answer whole or in pieces). Both `request_was_head` values are tried.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard::http1::{
    framing, parse_response_head, BodyFraming, HeadError, ResponseFraming, ResponseHead,
};

const MAX: usize = 1024;

fuzz_target!(|data: &[u8]| {
    let get = parse_response_head(data, MAX, false);
    let head = parse_response_head(data, MAX, true);
    for (res, was_head) in [(&get, false), (&head, true)] {
        match res {
            Ok(Some(h)) => check_head(data, h, was_head),
            Ok(None) => assert!(data.len() < MAX, "incomplete but the window was full"),
            Err(HeadError::TooLarge) => assert!(data.len() >= MAX, "TooLarge below the limit"),
            Err(_) => {}
        }
    }
    // `request_was_head` only removes the body: it cannot make a good head bad, and it
    // changes nothing but framing and keep-alive.
    match (&get, &head) {
        (Ok(Some(g)), Ok(Some(h))) => {
            assert_eq!(
                (g.status, g.minor_version, g.head_len, &g.headers),
                (h.status, h.minor_version, h.head_len, &h.headers)
            );
            if g.framing != ResponseFraming::CloseDelimited {
                assert_eq!(h.keep_alive, g.keep_alive);
            }
        }
        (Ok(Some(_)), other) => panic!("GET response accepted, HEAD response gave {other:?}"),
        (Ok(None), other) => assert_eq!(other, &Ok(None)),
        // A framing error in the headers is ignored when there is no body.
        (Err(HeadError::Framing(_)), other) => {
            assert!(matches!(other, Ok(Some(_))), "HEAD response gave {other:?}")
        }
        (Err(e), other) => assert_eq!(other, &Err(*e)),
    }
});

fn check_head(data: &[u8], h: &ResponseHead, was_head: bool) {
    let n = h.head_len;
    assert!(n <= data.len() && n <= MAX, "head_len {n} out of bounds");
    assert!(
        data[..n].ends_with(b"\r\n\r\n"),
        "head does not end in CRLFCRLF"
    );
    assert!(h.minor_version <= 1);
    assert!((100..=599).contains(&h.status) && h.status != 101);
    let head = &data[..n];

    let (mut te, mut cl) = (0, 0);
    for (name, value) in &h.headers {
        assert!(
            name.start <= name.end && name.end as usize <= n,
            "name span"
        );
        assert!(
            value.start <= value.end && value.end as usize <= n,
            "value span"
        );
        let name = name.get(head);
        assert!(!name.is_empty(), "empty header name");
        if name.eq_ignore_ascii_case(b"transfer-encoding") {
            te += 1;
        } else if name.eq_ignore_ascii_case(b"content-length") {
            cl += 1;
        }
    }

    let no_body = was_head || h.status < 200 || h.status == 204 || h.status == 304;
    if no_body {
        assert_eq!(
            h.framing,
            ResponseFraming::None,
            "a body where none is allowed"
        );
    } else {
        assert!(
            !(te > 0 && cl > 0),
            "Content-Length with Transfer-Encoding accepted"
        );
        assert!(cl <= 1, "several Content-Length fields accepted");
        let again = framing::decide(
            h.headers.iter().map(|(k, v)| (k.get(head), v.get(head))),
            h.minor_version,
        );
        let want = match again {
            Ok(BodyFraming::Chunked) => ResponseFraming::Chunked,
            Ok(BodyFraming::Length(n)) => ResponseFraming::Length(n),
            Ok(BodyFraming::None) => ResponseFraming::CloseDelimited,
            Err(e) => panic!("accepted a head whose framing is {e:?}"),
        };
        assert_eq!(h.framing, want);
    }
    if h.framing == ResponseFraming::CloseDelimited {
        assert!(
            !h.keep_alive,
            "close-delimited body on a reusable connection"
        );
    }
    if te > 0 && (h.status == 204 || h.status == 304) {
        assert!(!h.keep_alive, "204/304 with Transfer-Encoding kept alive");
    }

    assert_eq!(
        parse_response_head(head, MAX, was_head).as_ref(),
        Ok(&Some(h.clone()))
    );
    for cut in [0, 1, n / 2, n - 2, n - 1] {
        assert_eq!(
            parse_response_head(&head[..cut], MAX, was_head),
            Ok(None),
            "prefix of {cut} bytes of a valid head is not incomplete"
        );
    }
    for limit in [n / 2, n - 1] {
        assert_eq!(
            parse_response_head(data, limit, was_head),
            Err(HeadError::TooLarge),
            "limit {limit} below head_len {n}"
        );
    }
}
