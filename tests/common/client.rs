//! A raw HTTP/1.1 client over `std::net::TcpStream`: sends any bytes, reads responses in order
//! (Content-Length, chunked or close-delimited), and tells a server close from a timeout.

use super::READ_TIMEOUT;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

/// One response as read off the wire.
#[derive(Clone, Debug)]
pub struct Response {
    /// `HTTP/1.1` or `HTTP/1.0`.
    pub version: String,
    /// Status code.
    pub status: u16,
    /// Header fields in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
    /// The head bytes as received.
    pub raw_head: Vec<u8>,
    /// The body bytes as received (chunk framing included).
    pub raw_body: Vec<u8>,
}

impl Response {
    /// The first header with this name (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header with this name.
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON (a copy: simd-json rewrites its input).
    pub fn json(&self) -> simd_json::OwnedValue {
        parse_json(&self.body)
    }

    /// Whether the server said it will close the connection.
    pub fn says_close(&self) -> bool {
        self.headers_named("connection")
            .iter()
            .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")))
    }

    /// The whole response as received, for failure messages.
    pub fn dump(&self) -> String {
        let mut s = String::from_utf8_lossy(&self.raw_head).into_owned();
        s.push_str(&String::from_utf8_lossy(&self.raw_body));
        s
    }
}

/// Parses `bytes` (copied) as JSON, panicking with the text on failure.
pub fn parse_json(bytes: &[u8]) -> simd_json::OwnedValue {
    let mut copy = bytes.to_vec();
    match simd_json::to_owned_value(&mut copy) {
        Ok(v) => v,
        Err(e) => panic!(
            "not JSON ({e}): {:?}",
            String::from_utf8_lossy(bytes).into_owned()
        ),
    }
}

/// Why no response could be read.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadError {
    /// The server closed (EOF or reset) before the first byte of a response.
    Closed,
    /// Nothing complete within [`READ_TIMEOUT`]; what arrived is attached.
    Timeout(Vec<u8>),
    /// The server closed in the middle of a response; what arrived is attached.
    Truncated(Vec<u8>),
    /// Bytes that are not an HTTP/1.x response.
    Malformed(Vec<u8>),
}

/// A client connection that can send any bytes and read responses in order.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    eof: bool,
}

enum Fill {
    Data,
    Eof,
    Timeout,
}

impl Conn {
    /// Connects to `addr`, with [`READ_TIMEOUT`] on reads and writes.
    pub fn connect(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .expect("timeout");
        stream
            .set_write_timeout(Some(READ_TIMEOUT))
            .expect("timeout");
        let _ = stream.set_nodelay(true);
        Conn {
            stream,
            buf: Vec::new(),
            eof: false,
        }
    }

    /// Sets the read timeout (for tests that wait on a server deadline).
    pub fn set_read_timeout(&self, d: Duration) {
        self.stream.set_read_timeout(Some(d)).expect("timeout");
    }

    /// Sends raw bytes in one `write_all`.
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Closes the socket both ways (the client goes away).
    pub fn close(self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    /// Half-closes the write side.
    pub fn shutdown_write(&self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    fn fill(&mut self) -> Fill {
        if self.eof {
            return Fill::Eof;
        }
        let mut tmp = [0u8; 16384];
        match self.stream.read(&mut tmp) {
            Ok(0) => {
                self.eof = true;
                Fill::Eof
            }
            Ok(n) => {
                self.buf.extend_from_slice(&tmp[..n]);
                Fill::Data
            }
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut =>
            {
                Fill::Timeout
            }
            Err(_) => {
                // Reset or another error: the connection is over.
                self.eof = true;
                Fill::Eof
            }
        }
    }

    /// Reads until the bytes received (and not yet consumed) contain `needle`; returns them
    /// all, or `Err` with what arrived if the connection ended or timed out first.
    pub fn read_until(&mut self, needle: &[u8]) -> Result<Vec<u8>, Vec<u8>> {
        while !contains(&self.buf, needle) {
            match self.fill() {
                Fill::Data => {}
                Fill::Eof | Fill::Timeout => return Err(self.buf.clone()),
            }
        }
        Ok(self.buf.clone())
    }

    /// Reads more of the body of `resp`: `Truncated` or `Timeout` (with the head and what
    /// arrived) when the connection ended or went quiet first.
    fn fill_body(&mut self, resp: &Response) -> Result<(), ReadError> {
        let stop = match self.fill() {
            Fill::Data => return Ok(()),
            Fill::Eof => ReadError::Truncated,
            Fill::Timeout => ReadError::Timeout,
        };
        let mut got = resp.raw_head.clone();
        got.extend_from_slice(&self.buf);
        Err(stop(got))
    }

    /// Reads one response (a `1xx` interim response counts as one).
    pub fn read_response(&mut self) -> Result<Response, ReadError> {
        // Head.
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            match self.fill() {
                Fill::Data => {}
                Fill::Eof if self.buf.is_empty() => return Err(ReadError::Closed),
                Fill::Eof => return Err(ReadError::Truncated(std::mem::take(&mut self.buf))),
                Fill::Timeout => return Err(ReadError::Timeout(self.buf.clone())),
            }
        };
        let raw_head = self.buf[..head_end].to_vec();
        let Some((version, status, headers)) = parse_response_head(&raw_head) else {
            return Err(ReadError::Malformed(std::mem::take(&mut self.buf)));
        };
        self.buf.drain(..head_end);
        let mut resp = Response {
            version,
            status,
            headers,
            body: Vec::new(),
            raw_head,
            raw_body: Vec::new(),
        };
        if (100..200).contains(&status) || status == 204 || status == 304 {
            return Ok(resp);
        }
        let chunked = resp
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        if chunked {
            let (body, used) = loop {
                match decode_chunked(&self.buf) {
                    Ok(Some(x)) => break x,
                    Ok(None) => {}
                    Err(()) => return Err(ReadError::Malformed(resp.dump().into_bytes())),
                }
                self.fill_body(&resp)?;
            };
            resp.raw_body = self.buf.drain(..used).collect();
            resp.body = body;
        } else if let Some(cl) = resp.header("content-length") {
            let Ok(n) = cl.trim().parse::<usize>() else {
                return Err(ReadError::Malformed(resp.raw_head.clone()));
            };
            while self.buf.len() < n {
                self.fill_body(&resp)?;
            }
            resp.body = self.buf.drain(..n).collect();
            resp.raw_body = resp.body.clone();
        } else {
            // Close-delimited.
            while !self.eof {
                match self.fill_body(&resp) {
                    Ok(()) | Err(ReadError::Truncated(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            resp.body = std::mem::take(&mut self.buf);
            resp.raw_body = resp.body.clone();
        }
        Ok(resp)
    }

    /// Reads one response, panicking with what arrived if there is none.
    pub fn response(&mut self) -> Response {
        match self.read_response() {
            Ok(r) => r,
            Err(e) => panic!("no response: {}", describe(&e)),
        }
    }

    /// Waits for the server to close the connection. `Ok(())` if it closed (EOF or reset)
    /// without sending anything more; `Err(bytes)` if more bytes arrived or it stayed open
    /// past the read timeout (then `bytes` is what arrived, possibly empty).
    pub fn expect_closed(&mut self) -> Result<(), Vec<u8>> {
        loop {
            match self.fill() {
                Fill::Data => {}
                Fill::Eof if self.buf.is_empty() => return Ok(()),
                Fill::Eof | Fill::Timeout => return Err(std::mem::take(&mut self.buf)),
            }
        }
    }
}

/// A readable account of a read failure.
pub fn describe(e: &ReadError) -> String {
    match e {
        ReadError::Closed => "connection closed before any response byte".into(),
        ReadError::Timeout(b) => {
            format!("timed out after receiving {:?}", String::from_utf8_lossy(b))
        }
        ReadError::Truncated(b) => format!(
            "connection closed mid-response after {:?}",
            String::from_utf8_lossy(b)
        ),
        ReadError::Malformed(b) => format!("malformed response {:?}", String::from_utf8_lossy(b)),
    }
}

/// Position of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Whether `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || find(hay, needle).is_some()
}

/// Version, status and header fields of a response head.
type ParsedHead = (String, u16, Vec<(String, String)>);

fn parse_response_head(head: &[u8]) -> Option<ParsedHead> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next()?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next()?.to_string();
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return None;
    }
    let status: u16 = parts.next()?.parse().ok()?;
    let mut headers = Vec::new();
    for line in lines {
        if line.is_empty() {
            continue;
        }
        let (n, v) = line.split_once(':')?;
        headers.push((n.to_string(), v.trim().to_string()));
    }
    Some((version, status, headers))
}

/// Decodes a whole chunked body at the start of `buf`: `Ok(Some((body, bytes used)))`,
/// `Ok(None)` if incomplete, `Err` if malformed.
pub fn decode_chunked(buf: &[u8]) -> Result<Option<(Vec<u8>, usize)>, ()> {
    let mut pos = 0;
    let mut body = Vec::new();
    loop {
        let Some(le) = find(&buf[pos..], b"\r\n") else {
            return Ok(None);
        };
        let line = std::str::from_utf8(&buf[pos..pos + le]).map_err(|_| ())?;
        let size_hex = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16).map_err(|_| ())?;
        pos += le + 2;
        if size == 0 {
            // Trailers until an empty line.
            loop {
                let Some(le) = find(&buf[pos..], b"\r\n") else {
                    return Ok(None);
                };
                pos += le + 2;
                if le == 0 {
                    return Ok(Some((body, pos)));
                }
            }
        }
        if buf.len() < pos + size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&buf[pos..pos + size]);
        if &buf[pos + size..pos + size + 2] != b"\r\n" {
            return Err(());
        }
        pos += size + 2;
    }
}

// ---------------------------------------------------------------------------------------------
// Request builders

/// A POST with a JSON body and `Content-Length`, plus `extra` header lines (each ending CRLF).
pub fn post(path: &str, token: &str, body: &str, extra: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A GET with the token.
pub fn get(path: &str, token: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {token}\r\n\r\n").into_bytes()
}

/// A minimal chat completion body.
pub fn chat_body(model: &str, stream: bool) -> String {
    format!(
        r#"{{"model":"{model}","messages":[{{"role":"user","content":"Hello there"}}],"stream":{stream},"max_tokens":32}}"#
    )
}

/// A minimal Anthropic messages body.
pub fn messages_body(model: &str, stream: bool) -> String {
    format!(
        r#"{{"model":"{model}","max_tokens":32,"messages":[{{"role":"user","content":"Hello there"}}],"stream":{stream}}}"#
    )
}

/// Sends one request on a fresh connection and reads its response.
pub fn roundtrip(addr: SocketAddr, req: &[u8]) -> Response {
    let mut c = Conn::connect(addr);
    c.send(req).expect("send");
    c.response()
}
