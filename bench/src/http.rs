//! A minimal keep-alive HTTP/1.1 client over TCP or TLS (tls.rs): the request bytes are
//! built once by the caller, a response is read into a reused buffer, and only the status
//! line, `Content-Length` and `Connection: close` are parsed. oauthd answers every
//! request with a full body and a Content-Length (hyper + `Full<Bytes>`), which is all
//! this client supports; anything else is reported as an I/O error.

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::tls::{self, Stream};

pub struct Conn {
    addr: SocketAddr,
    stream: Option<Stream>,
    buf: Vec<u8>,
    /// Where the last response's body starts and ends in `buf`.
    body: (usize, usize),
    /// Bytes of `buf` already consumed by the last response.
    used: usize,
}

pub struct Response<'a> {
    pub status: u16,
    pub body: &'a [u8],
}

impl Conn {
    pub fn new(addr: SocketAddr) -> Conn {
        Conn {
            addr,
            stream: None,
            buf: Vec::with_capacity(16 * 1024),
            body: (0, 0),
            used: 0,
        }
    }

    async fn stream(&mut self) -> io::Result<&mut Stream> {
        if self.stream.is_none() {
            self.stream = Some(tls::connect(self.addr).await?);
            self.buf.clear();
            self.used = 0;
        }
        self.stream
            .as_mut()
            .ok_or_else(|| io::Error::other("no stream"))
    }

    /// Sends one request and reads its response. On an I/O error the connection is
    /// dropped and the next call reconnects.
    pub async fn send(&mut self, request: &[u8]) -> io::Result<Response<'_>> {
        match self.exchange(request).await {
            Ok((status, close)) => {
                if close {
                    self.stream = None;
                }
                Ok(Response {
                    status,
                    body: &self.buf[self.body.0..self.body.1],
                })
            }
            Err(e) => {
                self.stream = None;
                Err(e)
            }
        }
    }

    async fn exchange(&mut self, request: &[u8]) -> io::Result<(u16, bool)> {
        // Drop what the previous response used (no pipelining: normally everything).
        if self.used > 0 {
            self.buf.drain(..self.used);
            self.used = 0;
        }
        let stream = self.stream().await?;
        stream.write_all(request).await?;
        // A no-op for TCP; TLS may hold the last record until flushed.
        stream.flush().await?;
        let mut scanned = 0;
        let head_end = loop {
            if let Some(at) = find_head_end(&self.buf, scanned) {
                break at;
            }
            scanned = self.buf.len().saturating_sub(3);
            self.read_more().await?;
        };
        let (status, length, close) = parse_head(&self.buf[..head_end])?;
        let body_start = head_end + 4;
        let body_end = body_start + length;
        while self.buf.len() < body_end {
            self.read_more().await?;
        }
        self.body = (body_start, body_end);
        self.used = body_end;
        Ok((status, close))
    }

    async fn read_more(&mut self) -> io::Result<()> {
        let len = self.buf.len();
        if self.buf.capacity() - len < 4096 {
            self.buf.reserve(16 * 1024);
        }
        let cap = self.buf.capacity();
        self.buf.resize(cap, 0);
        let stream = match self.stream.as_mut() {
            Some(s) => s,
            None => return Err(io::Error::other("no stream")),
        };
        let n = match stream.read(&mut self.buf[len..]).await {
            Ok(n) => n,
            Err(e) => {
                self.buf.truncate(len);
                return Err(e);
            }
        };
        self.buf.truncate(len + n);
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "server closed the connection",
            ));
        }
        Ok(())
    }
}

fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + from)
}

/// Status, Content-Length, and whether the server will close the connection.
fn parse_head(head: &[u8]) -> io::Result<(u16, usize, bool)> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    let mut lines = head.split(|&b| b == b'\n');
    let status_line = lines.next().ok_or_else(|| bad("empty response"))?;
    let status = status_line
        .get(9..12)
        .and_then(|s| std::str::from_utf8(s).ok())
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| bad("bad status line"))?;
    let mut length = None;
    let mut close = false;
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
        if name.eq_ignore_ascii_case(b"content-length") {
            length = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse::<usize>().ok());
        } else if name.eq_ignore_ascii_case(b"connection") && value.eq_ignore_ascii_case(b"close")
        {
            close = true;
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            return Err(bad("chunked responses are not supported"));
        }
    }
    Ok((status, length.unwrap_or(0), close))
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |p| p + 1);
    &v[start..end]
}

/// Builds the bytes of one request.
pub fn request(
    method: &str,
    path: &str,
    host: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, &[u8])>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + body.map_or(0, |b| b.1.len()));
    out.extend_from_slice(format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n").as_bytes());
    for (name, value) in headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    match body {
        Some((content_type, bytes)) => {
            out.extend_from_slice(
                format!(
                    "Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
                    bytes.len()
                )
                .as_bytes(),
            );
            out.extend_from_slice(bytes);
        }
        None => out.extend_from_slice(b"\r\n"),
    }
    out
}

/// The string value of `"key":"…"` in a flat JSON body (no escapes in the values we read:
/// codes and tokens are URL-safe).
pub fn json_str<'a>(body: &'a [u8], key: &str) -> Option<&'a str> {
    let needle = format!("\"{key}\":\"");
    let at = body
        .windows(needle.len())
        .position(|w| w == needle.as_bytes())?
        + needle.len();
    let len = body[at..].iter().position(|&b| b == b'"')?;
    std::str::from_utf8(&body[at..at + len]).ok()
}

/// application/x-www-form-urlencoded encoding of one value.
pub fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// JSON string literal for `s`.
pub fn json_lit(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}
