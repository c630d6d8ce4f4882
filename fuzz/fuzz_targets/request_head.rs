//! `parse_request_head` on arbitrary bytes: never panics, and a parsed head is consistent
//! with the bytes it came from (spans in bounds, framing re-derivable from its own headers,
//! smuggling shapes refused, the same answer whether the head arrives whole or in pieces).
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard::http1::{framing, parse_request_head, BodyFraming, HeadError, RequestHead};

/// Small, so `TooLarge` is reachable from short inputs.
const MAX: usize = 1024;

fuzz_target!(|data: &[u8]| {
    let res = parse_request_head(data, MAX);
    match &res {
        Ok(Some(h)) => check_head(data, h),
        Ok(None) => assert!(data.len() < MAX, "incomplete but the window was full"),
        Err(HeadError::TooLarge) => assert!(data.len() >= MAX, "TooLarge below the limit"),
        Err(_) => {}
    }
    // A larger limit never changes a complete answer.
    if let Ok(Some(h)) = &res {
        assert_eq!(
            parse_request_head(data, MAX * 4).as_ref(),
            Ok(&Some(h.clone())),
            "limit changed the result"
        );
    }
});

fn check_head(data: &[u8], h: &RequestHead) {
    let n = h.head_len;
    assert!(n <= data.len() && n <= MAX, "head_len {n} out of bounds");
    assert!(
        data[..n].ends_with(b"\r\n\r\n"),
        "head does not end in CRLFCRLF"
    );
    assert!(h.minor_version <= 1);
    let head = &data[..n];

    assert!(h.path.start <= h.path.end && h.path.end as usize <= n);
    assert!(!h.path(head).is_empty(), "empty request target");
    let mut hosts = 0;
    let mut te = 0;
    let mut cl = 0;
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
        assert!(!name.contains(&b':'), "colon in a header name");
        assert!(!value.get(head).contains(&b'\n'), "LF in a header value");
        if name.eq_ignore_ascii_case(b"host") {
            hosts += 1;
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            te += 1;
        } else if name.eq_ignore_ascii_case(b"content-length") {
            cl += 1;
        }
    }
    assert!(hosts <= 1, "duplicate Host accepted");
    assert!(
        hosts == 1 || h.minor_version == 0,
        "HTTP/1.1 without Host accepted"
    );

    // Framing: the smuggling shapes are errors, and the decision matches the headers.
    assert!(
        !(te > 0 && cl > 0),
        "Content-Length with Transfer-Encoding accepted"
    );
    assert!(cl <= 1, "several Content-Length fields accepted");
    let again = framing::decide(
        h.headers.iter().map(|(k, v)| (k.get(head), v.get(head))),
        h.minor_version,
    );
    assert_eq!(
        again,
        Ok(h.framing),
        "framing not re-derivable from the headers"
    );
    match h.framing {
        BodyFraming::Chunked => assert!(te > 0 && h.minor_version == 1),
        BodyFraming::Length(len) => {
            assert_eq!(cl, 1);
            let v = h.header(head, b"content-length").unwrap();
            let digits: Vec<u8> = v.iter().copied().filter(u8::is_ascii_digit).collect();
            assert_eq!(String::from_utf8(digits).unwrap().parse::<u64>(), Ok(len));
        }
        BodyFraming::None => assert!(te == 0 && cl == 0),
    }
    if h.expect_continue {
        assert_eq!(h.minor_version, 1);
    }

    // The head alone parses to the same thing; every strict prefix is incomplete, and a
    // limit below the head length refuses it.
    assert_eq!(parse_request_head(head, MAX).as_ref(), Ok(&Some(h.clone())));
    for cut in [0, 1, n / 2, n - 2, n - 1] {
        assert_eq!(
            parse_request_head(&head[..cut], MAX),
            Ok(None),
            "prefix of {cut} bytes of a valid head is not incomplete"
        );
    }
    for limit in [n / 2, n - 1] {
        assert_eq!(
            parse_request_head(data, limit),
            Err(HeadError::TooLarge),
            "limit {limit} below head_len {n}"
        );
    }
}
