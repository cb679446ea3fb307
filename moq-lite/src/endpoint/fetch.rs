//! Development mode: fetching the server's certificate fingerprint over
//! plain HTTP/1.1.
//!
//! A development relay with a self-signed certificate serves its SHA-256 at
//! `http://host:port/certificate.sha256` (TCP, same port as its QUIC UDP
//! port). This is a deliberately minimal HTTP client: one GET, a bounded
//! response, a timeout. It trusts the network, so it is for development only.

use std::{net::SocketAddr, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use super::{EndpointError, Result, parse_fingerprint};

/// The largest response accepted, headers included.
const MAX_RESPONSE: usize = 4096;

/// GET `http://{authority}/certificate.sha256` from `addr` and parse the
/// body: one or more hex SHA-256 fingerprints separated by whitespace.
pub(crate) async fn fetch_fingerprints(
    addr: SocketAddr,
    authority: &str,
    timeout: Duration,
) -> Result<Vec<[u8; 32]>> {
    let url = format!("http://{authority}/certificate.sha256");
    let fail = |reason: String| EndpointError::Fingerprint {
        url: url.clone(),
        reason,
    };

    let body = tokio::time::timeout(timeout, get(addr, authority))
        .await
        .map_err(|_| fail(format!("no response within {timeout:?}")))?
        .map_err(fail)?;

    let text = String::from_utf8(body).map_err(|_| fail("the body is not text".into()))?;
    let fingerprints = text
        .split_whitespace()
        .map(parse_fingerprint)
        .collect::<Result<Vec<_>>>()
        .map_err(|err| fail(err.to_string()))?;
    if fingerprints.is_empty() {
        return Err(fail("the body is empty".into()));
    }
    Ok(fingerprints)
}

async fn get(addr: SocketAddr, authority: &str) -> std::result::Result<Vec<u8>, String> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|err| format!("TCP connect to {addr}: {err}"))?;

    let request = format!(
        "GET /certificate.sha256 HTTP/1.1\r\nHost: {authority}\r\nAccept: text/plain\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|err| format!("sending the request: {err}"))?;

    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|err| format!("reading the response: {err}"))?;
        if n == 0 {
            return parse_response(&buf, true);
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_RESPONSE {
            return Err(format!("the response is larger than {MAX_RESPONSE} bytes"));
        }
        // Stop as soon as a length-delimited body is complete, in case the
        // server ignores `Connection: close`.
        if let Ok(body) = parse_response(&buf, false) {
            return Ok(body);
        }
    }
}

/// Parse a complete HTTP/1.1 response into its body. With `eof` false, fails
/// unless the body's end is known from `Content-Length` or chunked framing.
fn parse_response(buf: &[u8], eof: bool) -> std::result::Result<Vec<u8>, String> {
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| "the response has no complete header".to_string())?;
    let head = std::str::from_utf8(&buf[..split]).map_err(|_| "the header is not text".to_string())?;
    let body = &buf[split + 4..];

    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    let mut parts = status.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let code = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(format!("not an HTTP/1 response: `{status}`"));
    }
    if code != "200" {
        return Err(format!("HTTP status `{status}`"));
    }

    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(
                value
                    .parse::<usize>()
                    .map_err(|_| format!("bad Content-Length `{value}`"))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        }
    }

    if chunked {
        return dechunk(body);
    }
    match length {
        Some(length) if body.len() >= length => Ok(body[..length].to_vec()),
        Some(_) => Err("the body is shorter than its Content-Length".into()),
        None if eof => Ok(body.to_vec()),
        None => Err("the body is not complete yet".into()),
    }
}

/// Decode a complete `Transfer-Encoding: chunked` body.
fn dechunk(mut body: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let truncated = || "the chunked body is truncated".to_string();
    let mut out = Vec::new();
    loop {
        let line = body.windows(2).position(|w| w == b"\r\n").ok_or_else(truncated)?;
        let size = std::str::from_utf8(&body[..line]).map_err(|_| "bad chunk size".to_string())?;
        let size = size.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16).map_err(|_| format!("bad chunk size `{size}`"))?;
        body = &body[line + 2..];
        if size == 0 {
            return Ok(out);
        }
        if body.len() < size + 2 {
            return Err(truncated());
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_length() {
        let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcdef";
        assert_eq!(parse_response(resp, false).unwrap(), b"abc");
        let short = b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nabc";
        assert!(parse_response(short, false).is_err());
    }

    #[test]
    fn until_eof() {
        let resp = b"HTTP/1.0 200 OK\r\n\r\nabc";
        assert!(parse_response(resp, false).is_err());
        assert_eq!(parse_response(resp, true).unwrap(), b"abc");
    }

    #[test]
    fn chunked() {
        let resp =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse_response(resp, false).unwrap(), b"abcde");
        let truncated = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab";
        assert!(parse_response(truncated, false).is_err());
    }

    #[test]
    fn status() {
        let resp = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        assert!(parse_response(resp, true).unwrap_err().contains("404"));
    }
}
