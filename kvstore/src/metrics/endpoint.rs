//! [`MetricsEndpoint`]: just enough HTTP/1.1 to be scraped.
//!
//! Each connection carries one request: the head is read (bounded in size and time), the
//! request line decides the answer, the answer is written with `Connection: close`, and the
//! connection is closed. `GET /metrics` gets the registry; any other path 404, any other
//! method 405, anything unparseable 400. A body, if a client sends one, is never read.
//! Bytes from the network never cause a panic; a bad client only loses its connection.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::registry::Registry;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::{registry, render, MetricsSource};

/// A request head (request line and headers) longer than this is refused. Prometheus
/// sends a few hundred bytes.
const REQUEST_HEAD_SIZE_BYTES_MAX: usize = 8 * 1024;
/// The whole request head must arrive within this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// The whole response must be taken within this.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once; more are closed on arrival. Scrapers are few.
const CONNECTIONS_MAX: usize = 16;
/// How long to pause after a failed accept, so that the loop does not spin.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(50);

const CONTENT_TYPE_OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const CONTENT_TYPE_TEXT: &str = "text/plain; charset=utf-8";

/// A running metrics endpoint. Dropping it stops accepting; a connection being served
/// finishes within its timeouts.
#[derive(Debug)]
pub struct MetricsEndpoint {
    local_address: SocketAddr,
    accept_task: JoinHandle<()>,
}

impl MetricsEndpoint {
    /// Listens on `listen` and serves `source` at `/metrics`.
    pub async fn start(listen: SocketAddr, source: Arc<dyn MetricsSource>) -> io::Result<MetricsEndpoint> {
        let listener = TcpListener::bind(listen).await?;
        let local_address = listener.local_addr()?;
        let accept_task = tokio::spawn(accept_loop(listener, Arc::new(registry(source))));
        tracing::info!(address = %local_address, "serving metrics at /metrics");
        Ok(MetricsEndpoint { local_address, accept_task })
    }

    /// The address actually bound, which differs from the configured one for port 0.
    pub fn local_address(&self) -> SocketAddr {
        self.local_address
    }
}

impl Drop for MetricsEndpoint {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

async fn accept_loop(listener: TcpListener, registry: Arc<Registry>) {
    let permits = Arc::new(Semaphore::new(CONNECTIONS_MAX));
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
                    tracing::debug!(%peer, "too many metrics connections; closed a new one");
                    continue;
                };
                let registry = Arc::clone(&registry);
                tokio::spawn(async move {
                    if let Err(error) = serve_connection(stream, &registry).await {
                        tracing::debug!(%peer, %error, "metrics connection failed");
                    }
                    drop(permit);
                });
            }
            Err(error) => {
                tracing::warn!(%error, "accepting a metrics connection failed");
                tokio::time::sleep(ACCEPT_RETRY_DELAY).await;
            }
        }
    }
}

async fn serve_connection(mut stream: TcpStream, registry: &Registry) -> io::Result<()> {
    let response = match tokio::time::timeout(REQUEST_TIMEOUT, read_head(&mut stream)).await {
        Err(_elapsed) => Response::error(408, "Request Timeout"),
        Ok(Err(error)) => return Err(error),
        Ok(Ok(Head::Closed)) => return Ok(()),
        Ok(Ok(Head::TooLarge)) => Response::error(431, "Request Header Fields Too Large"),
        Ok(Ok(Head::Complete(head))) => respond(&head, registry),
    };
    let write = async {
        stream.write_all(&response.to_bytes()).await?;
        stream.flush().await?;
        stream.shutdown().await
    };
    match tokio::time::timeout(RESPONSE_TIMEOUT, write).await {
        Ok(result) => result,
        Err(_elapsed) => Err(io::Error::new(io::ErrorKind::TimedOut, "the client did not take the response in time")),
    }
}

/// What arrived of a request head.
#[derive(Debug, PartialEq, Eq)]
enum Head {
    /// Everything up to and including the blank line that ends the head.
    Complete(Vec<u8>),
    /// The head passed [`REQUEST_HEAD_SIZE_BYTES_MAX`].
    TooLarge,
    /// The client closed the connection before sending a whole head.
    Closed,
}

async fn read_head<R: AsyncRead + Unpin>(reader: &mut R) -> io::Result<Head> {
    let mut head = Vec::new();
    let mut chunk = [0_u8; 1024];
    loop {
        let read = reader.read(&mut chunk).await?;
        if read == 0 {
            return Ok(Head::Closed);
        }
        // Search again only where the terminator could end in the new bytes.
        let search_from = head.len().saturating_sub(3);
        head.extend_from_slice(&chunk[..read]);
        if let Some(end) = head[search_from..].windows(4).position(|window| window == b"\r\n\r\n") {
            head.truncate(search_from + end + 4);
            return Ok(Head::Complete(head));
        }
        if head.len() > REQUEST_HEAD_SIZE_BYTES_MAX {
            return Ok(Head::TooLarge);
        }
    }
}

/// The answer to a complete request head.
fn respond(head: &[u8], registry: &Registry) -> Response {
    let Some((method, target)) = parse_request_line(head) else {
        return Response::error(400, "Bad Request");
    };
    if method != "GET" {
        return Response::error(405, "Method Not Allowed");
    }
    // A query string changes nothing: there is one exposition.
    let path = target.split_once('?').map_or(target, |(path, _query)| path);
    if path != "/metrics" {
        return Response::error(404, "Not Found");
    }
    match render(registry) {
        Ok(body) => Response { status: 200, reason: "OK", content_type: CONTENT_TYPE_OPENMETRICS, body },
        Err(fmt::Error) => Response::error(500, "Internal Server Error"),
    }
}

/// The method and request target of `METHOD SP TARGET SP HTTP/1.x CRLF`, or `None` if the
/// first line is not one.
fn parse_request_line(head: &[u8]) -> Option<(&str, &str)> {
    let line_end = head.windows(2).position(|window| window == b"\r\n")?;
    let line = std::str::from_utf8(&head[..line_end]).ok()?;
    let mut words = line.split(' ');
    let (method, target, version) = (words.next()?, words.next()?, words.next()?);
    let well_formed = words.next().is_none()
        && !method.is_empty()
        && method.bytes().all(|byte| byte.is_ascii_uppercase())
        && target.starts_with('/')
        && version.starts_with("HTTP/1.");
    well_formed.then_some((method, target))
}

#[derive(Debug)]
struct Response {
    status: u16,
    reason: &'static str,
    content_type: &'static str,
    body: String,
}

impl Response {
    fn error(status: u16, reason: &'static str) -> Response {
        Response { status, reason, content_type: CONTENT_TYPE_TEXT, body: format!("{status} {reason}\n") }
    }

    fn to_bytes(&self) -> Vec<u8> {
        let Response { status, reason, content_type, body } = self;
        let allow = if *status == 405 { "Allow: GET\r\n" } else { "" };
        let head = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{allow}Connection: close\r\n\r\n",
            body.len()
        );
        [head.as_bytes(), body.as_bytes()].concat()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn request_lines_are_parsed_strictly() {
        assert_eq!(parse_request_line(b"GET /metrics HTTP/1.1\r\n\r\n"), Some(("GET", "/metrics")));
        assert_eq!(parse_request_line(b"POST /x?y HTTP/1.0\r\nHost: a\r\n\r\n"), Some(("POST", "/x?y")));
        assert_eq!(parse_request_line(b"GET /metrics\r\n\r\n"), None);
        assert_eq!(parse_request_line(b"GET  /metrics HTTP/1.1\r\n\r\n"), None);
        assert_eq!(parse_request_line(b"get /metrics HTTP/1.1\r\n\r\n"), None);
        assert_eq!(parse_request_line(b"GET metrics HTTP/1.1\r\n\r\n"), None);
        assert_eq!(parse_request_line(b"GET /metrics HTTP/2\r\n\r\n"), None);
        assert_eq!(parse_request_line(b"GET /\xff HTTP/1.1\r\n\r\n"), None);
    }

    #[test]
    fn responses_carry_their_length_and_close() {
        let bytes = Response::error(404, "Not Found").to_bytes();
        let text = String::from_utf8(bytes).expect("ascii");
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"), "{text}");
        assert!(text.contains("Content-Length: 14\r\nConnection: close\r\n\r\n404 Not Found\n"), "{text}");
    }

    proptest! {
        #[test]
        fn any_request_head_gets_an_answer(head in proptest::collection::vec(any::<u8>(), 0..256)) {
            let registry = Registry::default();
            let response = respond(&head, &registry);
            prop_assert!(matches!(response.status, 200 | 400 | 404 | 405));
        }
    }
}
