//! JSON-RPC over HTTP to a BLADE-FL node, with retries and exponential backoff while the
//! node is unreachable (restarting, not yet started, network blip).
//!
//! Substrate nodes serve HTTP and WebSocket on one port; `ws://` and `wss://` URLs are
//! accepted and spoken to as `http://` / `https://` (only plain HTTP is compiled in: put
//! a TLS-terminating proxy in front of a remote node).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::error::{Error, Result};

/// How long to keep retrying an unreachable node, and how fast.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
	/// First wait after a failure.
	pub initial: Duration,
	/// Longest single wait.
	pub max_delay: Duration,
	/// Give up once the node has been unreachable this long.
	pub give_up_after: Duration,
}

impl Default for Backoff {
	fn default() -> Self {
		Backoff {
			initial: Duration::from_millis(250),
			max_delay: Duration::from_secs(8),
			give_up_after: Duration::from_secs(300),
		}
	}
}

impl Backoff {
	/// The delays to sleep between attempts: doubling from `initial`, capped at
	/// `max_delay`, until their sum would exceed `give_up_after`.
	pub fn delays(&self) -> impl Iterator<Item = Duration> + '_ {
		let mut next = self.initial.max(Duration::from_millis(1));
		let mut total = Duration::ZERO;
		std::iter::from_fn(move || {
			if total >= self.give_up_after {
				return None;
			}
			let delay = next.min(self.max_delay).min(self.give_up_after - total);
			total += delay;
			next = next.saturating_mul(2);
			Some(delay)
		})
	}
}

/// A JSON-RPC endpoint.
#[derive(Clone, Debug)]
pub struct Rpc {
	url: String,
	backoff: Backoff,
	timeout: Duration,
}

impl Rpc {
	/// An endpoint at `url` (`http://`, `https://`, `ws://` or `wss://`).
	pub fn new(url: &str, backoff: Backoff) -> Result<Rpc> {
		let url = if let Some(rest) = url.strip_prefix("ws://") {
			format!("http://{rest}")
		} else if let Some(rest) = url.strip_prefix("wss://") {
			format!("https://{rest}")
		} else if url.starts_with("http://") || url.starts_with("https://") {
			url.to_string()
		} else {
			return Err(Error::Invalid(format!(
				"node URL {url:?} must start with ws://, wss://, http:// or https://"
			)));
		};
		Ok(Rpc {
			url,
			backoff,
			timeout: Duration::from_secs(60),
		})
	}

	/// The HTTP URL spoken to.
	pub fn url(&self) -> &str {
		&self.url
	}

	/// One attempt: `Err(Transport)` when the node could not be reached or answered
	/// garbage; `Err(Rpc)` when it answered with a JSON-RPC error.
	pub fn call_once(&self, method: &str, params: &Value) -> Result<Value> {
		crate::metrics::get()
			.rpc_calls
			.with_label_values(&[method])
			.inc();
		let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
		let response = attohttpc::post(&self.url)
			.timeout(self.timeout)
			.json(&body)
			.map_err(|e| transport(method, e))?
			.send()
			.map_err(|e| transport(method, e))?;
		let status = response.status();
		let text = response.text().map_err(|e| transport(method, e))?;
		let value: Value = serde_json::from_str(&text).map_err(|e| Error::Transport {
			method: method.into(),
			reason: format!("HTTP {status}: not JSON ({e}): {}", truncate(&text)),
		})?;
		if let Some(error) = value.get("error") {
			return Err(Error::Rpc {
				method: method.into(),
				code: error["code"].as_i64().unwrap_or(0),
				message: format!(
					"{}{}",
					error["message"].as_str().unwrap_or("(no message)"),
					error
						.get("data")
						.map(|d| format!(": {d}"))
						.unwrap_or_default()
				),
			});
		}
		Ok(value.get("result").cloned().unwrap_or(Value::Null))
	}

	/// Call `method`, retrying transport failures with the endpoint's backoff. JSON-RPC
	/// errors are returned at once (the node is up and said no).
	pub fn call(&self, method: &str, params: Value) -> Result<Value> {
		let started = Instant::now();
		let mut delays = self.backoff.delays();
		let mut warned = false;
		loop {
			match self.call_once(method, &params) {
				Err(Error::Transport { reason, .. }) => match delays.next() {
					Some(delay) => {
						if !warned {
							tracing::warn!(url = %self.url, method, %reason, "node unreachable; retrying with backoff");
							warned = true;
						}
						std::thread::sleep(delay);
					}
					None => {
						crate::metrics::get().rpc_errors.inc();
						return Err(Error::Unreachable {
							url: self.url.clone(),
							waited: started.elapsed(),
							last: reason,
						});
					}
				},
				other => {
					if warned {
						tracing::info!(url = %self.url, waited_s = started.elapsed().as_secs_f64(), "node reachable again");
					}
					return other;
				}
			}
		}
	}
}

fn transport(method: &str, e: impl std::fmt::Display) -> Error {
	Error::Transport {
		method: method.into(),
		reason: e.to_string(),
	}
}

fn truncate(text: &str) -> String {
	text.chars().take(200).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
	use super::*;

	#[test]
	fn backoff_doubles_caps_and_stops() {
		let backoff = Backoff {
			initial: Duration::from_millis(100),
			max_delay: Duration::from_millis(400),
			give_up_after: Duration::from_millis(1500),
		};
		let delays: Vec<u64> = backoff.delays().map(|d| d.as_millis() as u64).collect();
		assert_eq!(delays, vec![100, 200, 400, 400, 400]);
	}

	#[test]
	fn urls_are_mapped_or_refused() {
		let b = Backoff::default();
		assert_eq!(
			Rpc::new("ws://127.0.0.1:9944", b).unwrap().url(),
			"http://127.0.0.1:9944"
		);
		assert_eq!(
			Rpc::new("https://node.example", b).unwrap().url(),
			"https://node.example"
		);
		assert!(matches!(
			Rpc::new("127.0.0.1:9944", b),
			Err(Error::Invalid(_))
		));
	}

	#[test]
	fn unreachable_node_gives_up_after_the_backoff() {
		// A port nobody listens on.
		let port = std::net::TcpListener::bind("127.0.0.1:0")
			.unwrap()
			.local_addr()
			.unwrap()
			.port();
		let rpc = Rpc::new(
			&format!("http://127.0.0.1:{port}"),
			Backoff {
				initial: Duration::from_millis(10),
				max_delay: Duration::from_millis(20),
				give_up_after: Duration::from_millis(60),
			},
		)
		.unwrap();
		match rpc.call("system_health", json!([])) {
			Err(Error::Unreachable { waited, .. }) => assert!(waited >= Duration::from_millis(60)),
			other => panic!("expected Unreachable, got {other:?}"),
		}
	}
}
