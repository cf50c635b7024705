//! A minimal HTTP/1.1 responder for the trainer's local endpoints (Prometheus metrics, the
//! live task page): `GET` only, one response per connection, no keep-alive, no TLS. It is
//! meant for loopback or a trusted network, not the open internet.

use std::{
	io::{BufRead, BufReader, Read, Write},
	net::{SocketAddr, TcpListener, TcpStream},
	sync::{
		atomic::{AtomicUsize, Ordering},
		Arc,
	},
	time::Duration,
};

use crate::error::{invalid, Result};

/// What a handler answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
	/// Status line after `HTTP/1.1 `, e.g. `200 OK`.
	pub status: &'static str,
	/// `Content-Type` header.
	pub content_type: &'static str,
	/// Body.
	pub body: Vec<u8>,
}

impl Response {
	/// `200 OK` with `body`.
	pub fn ok(content_type: &'static str, body: impl Into<Vec<u8>>) -> Response {
		Response {
			status: "200 OK",
			content_type,
			body: body.into(),
		}
	}

	/// `404 Not Found` with a hint.
	pub fn not_found(hint: &str) -> Response {
		Response {
			status: "404 Not Found",
			content_type: "text/plain; charset=utf-8",
			body: format!("{hint}\n").into_bytes(),
		}
	}
}

/// The longest request line read; longer requests are answered `400`.
const MAX_REQUEST_LINE: usize = 8 * 1024;

/// Connections answered at once; more get `503` straight away.
const MAX_CONNECTIONS: usize = 32;

/// Serve `handler(path)` for `GET path` on `addr` from background threads named `name`;
/// returns the bound address (port 0: any free port). Other methods get `405`, garbage
/// `400`. Each connection has its own thread (at most [`MAX_CONNECTIONS`], then `503`), so
/// a slow client delays nobody else; each of its reads and writes times out after 5 s.
pub fn serve<F>(addr: SocketAddr, name: &str, handler: F) -> Result<SocketAddr>
where
	F: Fn(&str) -> Response + Send + Sync + 'static,
{
	let listener =
		TcpListener::bind(addr).map_err(|e| invalid(format!("{name} on {addr}: {e}")))?;
	let bound = listener
		.local_addr()
		.map_err(|e| invalid(format!("{name}: {e}")))?;
	let handler = Arc::new(handler);
	let open = Arc::new(AtomicUsize::new(0));
	let thread_name = name.to_string();
	std::thread::Builder::new()
		.name(name.into())
		.spawn(move || {
			for stream in listener.incoming().flatten() {
				if open.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
					open.fetch_sub(1, Ordering::SeqCst);
					reply(&stream, &busy());
					continue;
				}
				let (handler, count) = (handler.clone(), open.clone());
				let spawned =
					std::thread::Builder::new()
						.name(thread_name.clone())
						.spawn(move || {
							answer(&stream, &*handler);
							count.fetch_sub(1, Ordering::SeqCst);
						});
				if spawned.is_err() {
					open.fetch_sub(1, Ordering::SeqCst);
				}
			}
		})
		.map_err(|e| invalid(format!("{name} thread: {e}")))?;
	Ok(bound)
}

fn busy() -> Response {
	Response {
		status: "503 Service Unavailable",
		content_type: "text/plain; charset=utf-8",
		body: b"too many connections\n".to_vec(),
	}
}

fn answer<F: Fn(&str) -> Response>(stream: &TcpStream, handler: &F) {
	let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
	let mut reader = BufReader::new(stream).take(MAX_REQUEST_LINE as u64 * 4);
	let mut request = String::new();
	let response = match reader.read_line(&mut request) {
		Ok(n) if n > 0 && n <= MAX_REQUEST_LINE => {
			// Drain the headers (bounded by the `take` above).
			let mut line = String::new();
			while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
				line.clear();
			}
			let mut words = request.split_whitespace();
			match (words.next(), words.next()) {
				(Some("GET"), Some(target)) => {
					let path = target.split(['?', '#']).next().unwrap_or("/");
					handler(path)
				}
				(Some(_), Some(_)) => Response {
					status: "405 Method Not Allowed",
					content_type: "text/plain; charset=utf-8",
					body: b"GET only\n".to_vec(),
				},
				_ => bad_request(),
			}
		}
		_ => bad_request(),
	};
	reply(stream, &response);
}

fn reply(stream: &TcpStream, response: &Response) {
	let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
	let mut stream = stream;
	let head = format!(
		"HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
		response.status,
		response.content_type,
		response.body.len()
	);
	let _ = stream
		.write_all(head.as_bytes())
		.and_then(|()| stream.write_all(&response.body));
}

fn bad_request() -> Response {
	Response {
		status: "400 Bad Request",
		content_type: "text/plain; charset=utf-8",
		body: b"malformed request\n".to_vec(),
	}
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
	use super::*;
	use std::io::Read;

	fn ask(addr: SocketAddr, raw: &[u8]) -> String {
		let mut s = TcpStream::connect(addr).unwrap();
		s.write_all(raw).unwrap();
		s.shutdown(std::net::Shutdown::Write).unwrap();
		let mut text = String::new();
		s.read_to_string(&mut text).unwrap();
		text
	}

	#[test]
	fn paths_reach_the_handler_and_bad_requests_get_errors() {
		let addr = serve(
			"127.0.0.1:0".parse().unwrap(),
			"http-test",
			|path| match path {
				"/hello" => Response::ok("text/plain", "hi"),
				_ => Response::not_found("try /hello"),
			},
		)
		.unwrap();
		let hi = ask(addr, b"GET /hello?x=1 HTTP/1.1\r\nHost: x\r\n\r\n");
		assert!(
			hi.starts_with("HTTP/1.1 200 OK") && hi.ends_with("\r\n\r\nhi"),
			"{hi}"
		);
		assert!(hi.contains("Content-Length: 2\r\n"), "{hi}");
		assert!(ask(addr, b"GET /nope HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
		assert!(ask(addr, b"POST /hello HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
		assert!(ask(addr, b"\r\n").starts_with("HTTP/1.1 400"));
		// An endless request line is refused, and the server keeps answering afterwards.
		let long = vec![b'A'; MAX_REQUEST_LINE * 2];
		assert!(ask(addr, &long).starts_with("HTTP/1.1 400"));
		assert!(ask(addr, b"GET /hello HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200"));
		// A silent client (connected, sends nothing) does not hold up the next one.
		let _silent = TcpStream::connect(addr).unwrap();
		let started = std::time::Instant::now();
		assert!(ask(addr, b"GET /hello HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200"));
		assert!(
			started.elapsed() < Duration::from_secs(4),
			"answered while another client was silent"
		);
	}
}
