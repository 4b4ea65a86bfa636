//! A small, strict HTTP/1.x request-head parser and the router of `examples/http_server.rs`.
//!
//! Pure functions over byte slices: no I/O, no allocation beyond the header list, no
//! panics on any input (`tests/examples.rs` feeds it arbitrary bytes with proptest).
//! The example server and the tests both include this file with `#[path]`.
//!
//! The parser is *incremental*: call [`parse_request`] on everything received so far.
//! It answers [`Parse::Partial`] until the head (request line + headers + blank line) is
//! complete, so a request split across any number of reads parses the same as one read.
//! It rejects as early as it can: a malformed request line is reported as soon as its
//! `\r\n` has arrived, and a head that grows past the size limit is reported without
//! waiting for the rest.

#![allow(dead_code)] // each includer uses a different subset

/// Default limit on the size of a request head (request line, headers, blank line).
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
/// Limit on the number of header lines.
pub const MAX_HEADERS: usize = 64;

/// A parsed request head. Every field borrows from the input buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    /// The method token, e.g. `GET`.
    pub method: &'a str,
    /// The request target, e.g. `/health`.
    pub path: &'a str,
    /// `HTTP/1.0` or `HTTP/1.1`.
    pub version: &'a str,
    /// The header fields in order, names as sent, values trimmed of surrounding spaces.
    pub headers: Vec<(&'a str, &'a [u8])>,
}

impl Request<'_> {
    /// The value of the first header named `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| *v)
    }
}

/// Outcome of feeding the bytes received so far to [`parse_request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parse<'a> {
    /// The head is complete; `head_len` bytes (including the blank line) were consumed.
    Complete {
        /// The parsed head.
        request: Request<'a>,
        /// Bytes of input the head used; a body, if any, starts here.
        head_len: usize,
    },
    /// Everything so far is valid, but the head is not complete yet: read more.
    Partial,
}

/// Why a request head was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// The bytes are not an HTTP/1.x request head; the text says what was wrong.
    Malformed(&'static str),
    /// The head is larger than the limit (or has too many header lines).
    HeadTooLarge,
}

impl ParseError {
    /// The response status for this error: 400 or 431.
    pub fn status(self) -> u16 {
        match self {
            ParseError::Malformed(_) => 400,
            ParseError::HeadTooLarge => 431,
        }
    }
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParseError::Malformed(why) => write!(f, "malformed request: {why}"),
            ParseError::HeadTooLarge => f.write_str("request head too large"),
        }
    }
}

impl std::error::Error for ParseError {}

/// Parses the request head at the start of `buf` (everything received so far), allowing
/// at most `max_head` bytes for the whole head.
///
/// # Errors
///
/// [`ParseError::Malformed`] for bytes that cannot be the start of a valid request head,
/// [`ParseError::HeadTooLarge`] once the head is known to exceed `max_head` bytes or
/// [`MAX_HEADERS`] lines.
pub fn parse_request(buf: &[u8], max_head: usize) -> Result<Parse<'_>, ParseError> {
    // Only look at the allowed window: a head must end inside it.
    let window = &buf[..buf.len().min(max_head)];
    let head_end = find(window, b"\r\n\r\n");

    // Validate the request line as soon as it is complete, even if the headers are not.
    let Some(line_end) = find(window, b"\r\n") else {
        return if buf.len() >= max_head {
            Err(ParseError::HeadTooLarge)
        } else {
            check_partial_line(window).map(|()| Parse::Partial)
        };
    };
    let (method, path, version) = parse_request_line(&window[..line_end])?;

    let Some(head_end) = head_end else {
        // Check the complete header lines received so far, so garbage is rejected early.
        let rest = &window[line_end + 2..];
        let tail = match rfind(rest, b"\r\n") {
            Some(end) => {
                if end > 0 {
                    parse_headers(&rest[..end])?;
                }
                &rest[end + 2..]
            }
            None => rest,
        };
        if tail.contains(&b'\n') {
            return Err(ParseError::Malformed("bare LF in header line"));
        }
        return if buf.len() >= max_head { Err(ParseError::HeadTooLarge) } else { Ok(Parse::Partial) };
    };

    let headers = if head_end == line_end { Vec::new() } else { parse_headers(&window[line_end + 2..head_end])? };
    Ok(Parse::Complete { request: Request { method, path, version, headers }, head_len: head_end + 4 })
}

/// Checks the start of a request line that has no `\r\n` yet.
fn check_partial_line(partial: &[u8]) -> Result<(), ParseError> {
    // A bare '\n' can never become a valid line ending: reject it now.
    if partial.iter().any(|&b| b == b'\n' || (b != b'\r' && !is_line_byte(b))) {
        return Err(ParseError::Malformed("invalid byte in request line"));
    }
    // A '\r' may only be the last byte (the first half of a "\r\n").
    if let Some(cr) = partial.iter().position(|&b| b == b'\r') {
        if cr + 1 != partial.len() {
            return Err(ParseError::Malformed("bare CR in request line"));
        }
    }
    Ok(())
}

/// Splits `METHOD SP TARGET SP VERSION` (exactly two single spaces).
fn parse_request_line(line: &[u8]) -> Result<(&str, &str, &str), ParseError> {
    if !line.iter().all(|&b| is_line_byte(b)) {
        return Err(ParseError::Malformed("invalid byte in request line"));
    }
    // All bytes are visible ASCII or spaces, so this cannot fail; map it anyway.
    let line = std::str::from_utf8(line).map_err(|_| ParseError::Malformed("request line is not ASCII"))?;
    let mut parts = line.split(' ');
    let (Some(method), Some(path), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ParseError::Malformed("request line must be `METHOD TARGET VERSION`"));
    };
    if method.is_empty() || !method.bytes().all(is_tchar) {
        return Err(ParseError::Malformed("invalid method"));
    }
    if !(path.starts_with('/') || path == "*") {
        return Err(ParseError::Malformed("request target must start with '/'"));
    }
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(ParseError::Malformed("unsupported HTTP version"));
    }
    Ok((method, path, version))
}

/// Parses `name: value` lines separated by `\r\n` (no trailing line ending).
fn parse_headers(block: &[u8]) -> Result<Vec<(&str, &[u8])>, ParseError> {
    let mut headers = Vec::new();
    for line in split_crlf(block) {
        if headers.len() == MAX_HEADERS {
            return Err(ParseError::HeadTooLarge);
        }
        let colon = line.iter().position(|&b| b == b':').ok_or(ParseError::Malformed("header line without ':'"))?;
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return Err(ParseError::Malformed("invalid header name"));
        }
        if !value.iter().all(|&b| b == b'\t' || b == b' ' || b.is_ascii_graphic() || b >= 0x80) {
            return Err(ParseError::Malformed("invalid byte in header value"));
        }
        let name = std::str::from_utf8(name).map_err(|_| ParseError::Malformed("invalid header name"))?;
        headers.push((name, trim(value)));
    }
    Ok(headers)
}

/// Splits on `\r\n`; a lone `\r` or `\n` inside a line is left for the validators.
fn split_crlf(block: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(block);
    std::iter::from_fn(move || {
        let cur = rest?;
        match find(cur, b"\r\n") {
            Some(i) => {
                rest = Some(&cur[i + 2..]);
                Some(&cur[..i])
            }
            None => {
                rest = None;
                Some(cur)
            }
        }
    })
}

fn trim(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// Bytes allowed in a request line: visible ASCII and space.
fn is_line_byte(b: u8) -> bool {
    b == b' ' || b.is_ascii_graphic()
}

/// RFC 9110 `tchar`: the bytes of a method or header name.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

/// A response: status code and body (the status line and headers come from [`render`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The body.
    pub body: &'static str,
}

/// The routing table of the example server: `GET /health` is 200 "ok", any other `GET`
/// is 404, any other method is 405.
pub fn route(req: &Request<'_>) -> Response {
    match (req.method, req.path) {
        ("GET", "/health") => Response { status: 200, body: "ok" },
        ("GET", _) => Response { status: 404, body: "" },
        _ => Response { status: 405, body: "" },
    }
}

/// The response for a request the parser rejected (400 or 431).
pub fn error_response(err: ParseError) -> Response {
    Response { status: err.status(), body: "" }
}

/// The reason phrase of the status codes this server sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        _ => "Unknown",
    }
}

/// Serializes a response (one request per connection: `Connection: close`).
pub fn render(resp: Response) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n",
        resp.status,
        reason(resp.status),
        resp.body.len()
    );
    if resp.status == 405 {
        out.push_str("Allow: GET\r\n");
    }
    out.push_str("\r\n");
    out.push_str(resp.body);
    out.into_bytes()
}
