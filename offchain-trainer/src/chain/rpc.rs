//! JSON-RPC to a BLADE-FL node, with retries and exponential backoff while the node is
//! unreachable (restarting, not yet started, network blip).
//!
//! Two transports, chosen by the URL:
//! - **`ws://` / `wss://`** (the default): one `jsonrpsee` WebSocket connection for calls,
//!   re-opened with backoff when it drops; [`Heads`] follows the best chain with
//!   `chain_subscribeNewHeads` on a second connection (re-subscribing after a restart), and
//!   transactions are sent with `author_submitAndWatchExtrinsic` so their pool status
//!   (`ready`, `inBlock`, `retracted`, `dropped`, `invalid`) arrives without asking
//!   ([`TxWatch`]). Nothing polls.
//! - **`http://` / `https://`**: one HTTP request per call; [`Heads`] polls
//!   `chain_getHeader` every poll interval. Kept for proxies that only pass HTTP and as the
//!   baseline the WebSocket client is measured against (`benchmarking/rpc-load`).
//!
//! **Failover.** The URL may list several nodes of the same chain separated by commas
//! (`ws://a:9944,ws://b:9944`). Calls, the head subscription and transaction submission go
//! to one of them; when it stops answering, the next one in the list takes over at the
//! first failed attempt instead of after the backoff, so a trainer whose node crashes keeps
//! its round. The client above already survives the reorgs and lost pool entries a switch
//! can bring (it follows heads by parent hash and re-sends what is neither on chain nor
//! in the pool).

use std::{
	sync::{
		atomic::{AtomicUsize, Ordering},
		Arc, Mutex, OnceLock,
	},
	time::{Duration, Instant},
};

use jsonrpsee::{
	core::{
		client::{ClientT, Error as ClientError, SubscriptionClientT},
		params::ArrayParams,
	},
	ws_client::{WsClient, WsClientBuilder},
};
use serde_json::{json, Value};
use sp_core::H256;
use tokio::sync::watch;

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

/// Largest request or response accepted over WebSocket (blocks carry model blobs).
const WS_MAX_MESSAGE: u32 = 1 << 30;

/// The process's async runtime for WebSocket connections (two worker threads, started on
/// first use; the rest of the trainer is synchronous and blocks on it).
fn runtime() -> Result<&'static tokio::runtime::Runtime> {
	static RUNTIME: OnceLock<std::result::Result<tokio::runtime::Runtime, String>> =
		OnceLock::new();
	RUNTIME
		.get_or_init(|| {
			tokio::runtime::Builder::new_multi_thread()
				.worker_threads(2)
				.thread_name("blade-rpc")
				.enable_all()
				.build()
				.map_err(|e| e.to_string())
		})
		.as_ref()
		.map_err(|e| Error::Invalid(format!("cannot start the RPC runtime: {e}")))
}

async fn ws_connect(url: &str, timeout: Duration) -> std::result::Result<WsClient, ClientError> {
	WsClientBuilder::default()
		.max_request_size(WS_MAX_MESSAGE)
		.max_response_size(WS_MAX_MESSAGE)
		.request_timeout(timeout)
		.connection_timeout(Duration::from_secs(10))
		.max_buffer_capacity_per_subscription(4096)
		.build(url)
		.await
}

fn params_of(method: &str, params: &Value) -> Result<ArrayParams> {
	let mut out = ArrayParams::new();
	if let Some(list) = params.as_array() {
		for value in list {
			out.insert(value).map_err(|e| transport(method, e))?;
		}
	}
	Ok(out)
}

fn call_error(method: &str, e: ClientError) -> Error {
	match e {
		ClientError::Call(error) => Error::Rpc {
			method: method.into(),
			code: i64::from(error.code()),
			message: format!(
				"{}{}",
				error.message(),
				error
					.data()
					.map(|d| format!(": {}", d.get()))
					.unwrap_or_default()
			),
		},
		other => transport(method, other),
	}
}

/// The open WebSocket connection and the index of the endpoint it goes to.
type WsSlot = Arc<Mutex<Option<(usize, Arc<WsClient>)>>>;

#[derive(Clone)]
enum Transport {
	Http,
	Ws(WsSlot),
}

impl std::fmt::Debug for Transport {
	fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
		f.write_str(match self {
			Transport::Http => "Http",
			Transport::Ws(_) => "Ws",
		})
	}
}

/// The nodes a client may speak to and the one it speaks to now.
#[derive(Debug)]
struct Endpoints {
	urls: Vec<String>,
	active: AtomicUsize,
}

impl Endpoints {
	/// The endpoint in use: its index and URL.
	fn current(&self) -> (usize, &str) {
		let index = self.active.load(Ordering::Acquire) % self.urls.len();
		(index, &self.urls[index])
	}

	/// After a transport failure at endpoint `failed`: move on to the next one, unless
	/// another user of the same endpoints already did. Returns the URL now in use when it
	/// changed.
	fn fail_over(&self, failed: usize) -> Option<&str> {
		if self.urls.len() < 2 {
			return None;
		}
		let next = (failed + 1) % self.urls.len();
		self.active
			.compare_exchange(failed, next, Ordering::AcqRel, Ordering::Acquire)
			.ok()
			.map(|_| self.urls[next].as_str())
	}

	/// Every URL, comma-separated (for messages).
	fn all(&self) -> String {
		self.urls.join(",")
	}
}

/// A JSON-RPC endpoint: one node, or several of the same chain to fail over between.
#[derive(Clone, Debug)]
pub struct Rpc {
	endpoints: Arc<Endpoints>,
	transport: Transport,
	backoff: Backoff,
	timeout: Duration,
}

impl Rpc {
	/// An endpoint at `url`: `ws://` or `wss://` (WebSocket, subscriptions), `http://` or
	/// `https://` (polling). Several URLs of nodes of the same chain, separated by commas,
	/// are tried in turn (failover); they must all use the same kind of transport.
	pub fn new(url: &str, backoff: Backoff) -> Result<Rpc> {
		let urls: Vec<String> = url
			.split(',')
			.map(str::trim)
			.filter(|u| !u.is_empty())
			.map(str::to_string)
			.collect();
		let kind = |u: &str| {
			if u.starts_with("ws://") || u.starts_with("wss://") {
				Ok(true)
			} else if u.starts_with("http://") || u.starts_with("https://") {
				Ok(false)
			} else {
				Err(Error::Invalid(format!(
					"node URL {u:?} must start with ws://, wss://, http:// or https://"
				)))
			}
		};
		let Some(first) = urls.first() else {
			return Err(Error::Invalid("no node URL given".into()));
		};
		let ws = kind(first)?;
		for other in &urls[1..] {
			if kind(other)? != ws {
				return Err(Error::Invalid(format!(
					"node URLs {url:?} mix WebSocket and HTTP; list endpoints of one kind"
				)));
			}
		}
		let transport = if ws {
			Transport::Ws(Arc::new(Mutex::new(None)))
		} else {
			Transport::Http
		};
		Ok(Rpc {
			endpoints: Arc::new(Endpoints {
				urls,
				active: AtomicUsize::new(0),
			}),
			transport,
			backoff,
			timeout: Duration::from_secs(60),
		})
	}

	/// The URL spoken to now (one of those given, after any failover).
	pub fn url(&self) -> &str {
		self.endpoints.current().1
	}

	/// Whether heads and transaction status arrive by subscription (WebSocket).
	pub fn subscribes(&self) -> bool {
		matches!(self.transport, Transport::Ws(_))
	}

	/// One attempt: `Err(Transport)` when the node could not be reached or answered
	/// garbage; `Err(Rpc)` when it answered with a JSON-RPC error.
	pub fn call_once(&self, method: &str, params: &Value) -> Result<Value> {
		crate::metrics::get()
			.rpc_calls
			.with_label_values(&[method])
			.inc();
		match &self.transport {
			Transport::Http => self.http_call(method, params),
			Transport::Ws(slot) => {
				let client = self.ws_client(slot, method)?;
				let params = params_of(method, params)?;
				let answer = runtime()?.block_on(client.request::<Value, _>(method, params));
				answer.map_err(|e| {
					if !client.is_connected() {
						// Reconnect on the next call.
						*slot.lock().unwrap_or_else(|p| p.into_inner()) = None;
					}
					call_error(method, e)
				})
			}
		}
	}

	/// The open connection to the endpoint in use, opening one if there is none, it
	/// dropped, or it goes to an endpoint failed over from.
	fn ws_client(
		&self,
		slot: &Mutex<Option<(usize, Arc<WsClient>)>>,
		method: &str,
	) -> Result<Arc<WsClient>> {
		let (index, url) = self.endpoints.current();
		let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
		if let Some((_, client)) = slot
			.as_ref()
			.filter(|(at, c)| *at == index && c.is_connected())
		{
			return Ok(client.clone());
		}
		*slot = None;
		let client = Arc::new(
			runtime()?
				.block_on(ws_connect(url, self.timeout))
				.map_err(|e| transport(method, e))?,
		);
		*slot = Some((index, client.clone()));
		Ok(client)
	}

	fn http_call(&self, method: &str, params: &Value) -> Result<Value> {
		let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
		let response = attohttpc::post(self.endpoints.current().1)
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
		self.retrying(method, || self.call_once(method, &params))
	}

	fn retrying<T>(&self, method: &str, mut attempt: impl FnMut() -> Result<T>) -> Result<T> {
		let started = Instant::now();
		let mut delays = self.backoff.delays();
		let mut warned = false;
		loop {
			let (index, url) = self.endpoints.current();
			match attempt() {
				Err(Error::Transport { reason, .. }) => match delays.next() {
					Some(delay) => {
						if let Some(next) = self.endpoints.fail_over(index) {
							tracing::warn!(from = url, to = next, method, %reason, "node unreachable; failing over");
							crate::metrics::get().rpc_errors.inc();
							// The next endpoint is tried at once; the backoff paces whole
							// rounds of the list.
							if index + 1 < self.endpoints.urls.len() {
								continue;
							}
						} else if !warned {
							tracing::warn!(url, method, %reason, "node unreachable; retrying with backoff");
							warned = true;
						}
						std::thread::sleep(delay);
					}
					None => {
						crate::metrics::get().rpc_errors.inc();
						return Err(Error::Unreachable {
							url: self.endpoints.all(),
							waited: started.elapsed(),
							last: reason,
						});
					}
				},
				other => {
					if warned {
						tracing::info!(
							url,
							waited_s = started.elapsed().as_secs_f64(),
							"node reachable again"
						);
					}
					return other;
				}
			}
		}
	}

	/// Submit encoded extrinsic `bytes`. Over WebSocket with `author_submitAndWatchExtrinsic`:
	/// the returned [`TxWatch`] then follows its pool status; over HTTP with
	/// `author_submitExtrinsic` (no watch). Either way the transaction hash is
	/// Blake2-256 of `bytes`. A refusal (invalid, stale nonce, already imported) is an
	/// `Err(Rpc)` as from any call.
	pub fn submit(&self, bytes: &[u8]) -> Result<(H256, Option<TxWatch>)> {
		let hash = H256(sp_crypto_hashing::blake2_256(bytes));
		let hex = format!("0x{}", hex::encode(bytes));
		let method = "author_submitAndWatchExtrinsic";
		let Transport::Ws(slot) = &self.transport else {
			let value = self.call("author_submitExtrinsic", json!([hex]))?;
			let answered = super::parse_h256(&value, "transaction hash")?;
			if answered != hash {
				tracing::warn!(?answered, ?hash, "node hashes extrinsics differently");
			}
			return Ok((answered, None));
		};
		let rt = runtime()?;
		self.retrying(method, || {
			crate::metrics::get()
				.rpc_calls
				.with_label_values(&[method])
				.inc();
			let client = self.ws_client(slot, method)?;
			let params = params_of(method, &json!([hex]))?;
			let subscription = rt
				.block_on(client.subscribe::<Value, _>(method, params, "author_unwatchExtrinsic"))
				.map_err(|e| {
					if !client.is_connected() {
						*slot.lock().unwrap_or_else(|p| p.into_inner()) = None;
					}
					call_error(method, e)
				})?;
			let state = Arc::new(Mutex::new(TxState::default()));
			let task = rt.spawn(follow_tx(subscription, state.clone()));
			Ok((hash, Some(TxWatch { state, task })))
		})
	}

	/// Follow the best chain: by subscription over WebSocket, by polling every `poll`
	/// over HTTP.
	pub fn heads(&self, poll: Duration) -> Result<Heads> {
		match &self.transport {
			Transport::Http => Ok(Heads {
				source: HeadSource::Poll {
					rpc: self.clone(),
					interval: poll,
				},
				last: None,
			}),
			Transport::Ws(_) => {
				let (tx, rx) = watch::channel(None);
				let task = runtime()?.spawn(follow_heads(
					self.endpoints.clone(),
					self.backoff,
					self.timeout,
					tx,
				));
				Ok(Heads {
					source: HeadSource::Subscribed {
						rx,
						task,
						timeout: self.backoff.give_up_after,
					},
					last: None,
				})
			}
		}
	}
}

/// A best-chain head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
	/// Its number.
	pub number: u32,
	/// Its hash.
	pub hash: H256,
	/// Its parent's hash.
	pub parent: H256,
}

/// Parse a JSON header (as `chain_getHeader` and `chain_subscribeNewHeads` give it) and
/// hash it.
pub fn parse_head(value: &Value) -> Result<Head> {
	let header: blade_fl_runtime::Header =
		serde_json::from_value(value.clone()).map_err(|e| Error::Decode {
			what: "header".into(),
			reason: e.to_string(),
		})?;
	Ok(Head {
		number: header.number,
		hash: header.hash(),
		parent: header.parent_hash,
	})
}

enum HeadSource {
	Poll {
		rpc: Rpc,
		interval: Duration,
	},
	Subscribed {
		rx: watch::Receiver<Option<Head>>,
		task: tokio::task::JoinHandle<()>,
		timeout: Duration,
	},
}

/// The node's best head as it moves ([`Rpc::heads`]).
pub struct Heads {
	source: HeadSource,
	last: Option<Head>,
}

impl Drop for Heads {
	fn drop(&mut self) {
		if let HeadSource::Subscribed { task, .. } = &self.source {
			task.abort();
		}
	}
}

impl Heads {
	/// Whether heads arrive by subscription.
	pub fn subscribed(&self) -> bool {
		matches!(self.source, HeadSource::Subscribed { .. })
	}

	/// The best head now. Polling: one `chain_getHeader`. Subscribed: the last one
	/// announced (waiting for the first, or while the node is unreachable, up to the
	/// backoff's give-up time).
	pub fn best(&mut self) -> Result<Head> {
		let head = match &mut self.source {
			HeadSource::Poll { rpc, .. } => parse_head(&rpc.call("chain_getHeader", json!([]))?)?,
			HeadSource::Subscribed { rx, timeout, .. } => {
				let current = *rx.borrow_and_update();
				match current {
					Some(head) => head,
					None => wait_changed(rx, *timeout)?,
				}
			}
		};
		self.last = Some(head);
		Ok(head)
	}

	/// Wait until the best head differs from the one [`Heads::best`] last returned (at
	/// most `limit`): subscribed, until the next announcement; polling, one poll interval.
	pub fn wait_new(&mut self, limit: Duration) -> Result<()> {
		match &mut self.source {
			HeadSource::Poll { interval, .. } => {
				std::thread::sleep((*interval).min(limit));
				Ok(())
			}
			HeadSource::Subscribed { rx, .. } => {
				let seen = self.last;
				if rx.borrow().is_some() && *rx.borrow() != seen {
					return Ok(());
				}
				match wait_changed(rx, limit) {
					Ok(_) | Err(Error::Timeout(_)) => Ok(()),
					Err(e) => Err(e),
				}
			}
		}
	}
}

fn wait_changed(rx: &mut watch::Receiver<Option<Head>>, limit: Duration) -> Result<Head> {
	let rt = runtime()?;
	let deadline = Instant::now() + limit;
	loop {
		let left = deadline.saturating_duration_since(Instant::now());
		match rt.block_on(async { tokio::time::timeout(left, rx.changed()).await }) {
			Err(_) => return Err(Error::Timeout("a new best block".into())),
			Ok(Err(_)) => return Err(Error::Invalid("head subscription stopped".into())),
			Ok(Ok(())) => {
				if let Some(head) = *rx.borrow_and_update() {
					return Ok(head);
				}
			}
		}
	}
}

/// Keep a `chain_subscribeNewHeads` subscription open, re-connecting with backoff (never
/// giving up: the waiting side has its own deadline), and announce every new best head.
async fn follow_heads(
	endpoints: Arc<Endpoints>,
	backoff: Backoff,
	timeout: Duration,
	tx: watch::Sender<Option<Head>>,
) {
	let mut failures = 0u32;
	loop {
		let (index, url) = endpoints.current();
		let reason = match ws_connect(url, timeout).await {
			Err(e) => e.to_string(),
			Ok(client) => match client
				.subscribe::<Value, _>(
					"chain_subscribeNewHeads",
					ArrayParams::new(),
					"chain_unsubscribeNewHeads",
				)
				.await
			{
				Err(e) => e.to_string(),
				Ok(mut subscription) => {
					if failures > 0 {
						tracing::info!(url, "head subscription restored");
					}
					failures = 0;
					loop {
						tokio::select! {
							next = subscription.next() => match next {
								Some(Ok(value)) => match parse_head(&value) {
									Ok(head) => {
										tx.send_replace(Some(head));
									}
									Err(e) => tracing::warn!(error = %e, "unreadable head announced"),
								},
								Some(Err(e)) => tracing::warn!(error = %e, "unreadable head announced"),
								None => break,
							},
							_ = tx.closed() => return,
						}
					}
					"subscription closed".to_string()
				}
			},
		};
		if tx.is_closed() {
			return;
		}
		crate::metrics::get().rpc_errors.inc();
		if let Some(next) = endpoints.fail_over(index) {
			tracing::warn!(from = url, to = next, %reason, "head subscription lost; failing over");
			// The next endpoint at once; the backoff paces whole rounds of the list.
			if index + 1 < endpoints.urls.len() {
				continue;
			}
		} else if failures == 0 {
			tracing::warn!(url, %reason, "head subscription lost; reconnecting with backoff");
		}
		let delay = backoff
			.initial
			.saturating_mul(1u32 << failures.min(16))
			.min(backoff.max_delay);
		failures = failures.saturating_add(1);
		tokio::time::sleep(delay).await;
	}
}

/// What the pool said about a watched transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TxState {
	/// Blocks it was announced in (`inBlock`), oldest first; a retracted block stays
	/// listed (the caller checks which are on the best chain).
	pub in_blocks: Vec<H256>,
	/// `Some(reason)` once the pool let it go without inclusion (`dropped`, `invalid`,
	/// `usurped`).
	pub gone: Option<String>,
	/// The watch ended (connection lost or the node ended it): what is known may be stale.
	pub ended: bool,
}

/// The pool status of a transaction sent with `author_submitAndWatchExtrinsic`.
pub struct TxWatch {
	state: Arc<Mutex<TxState>>,
	task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for TxWatch {
	fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
		f.debug_tuple("TxWatch").field(&self.state()).finish()
	}
}

impl Drop for TxWatch {
	fn drop(&mut self) {
		self.task.abort();
	}
}

impl TxWatch {
	/// What is known now.
	pub fn state(&self) -> TxState {
		self.state.lock().unwrap_or_else(|p| p.into_inner()).clone()
	}
}

async fn follow_tx(
	mut subscription: jsonrpsee::core::client::Subscription<Value>,
	state: Arc<Mutex<TxState>>,
) {
	while let Some(next) = subscription.next().await {
		let Ok(status) = next else { continue };
		let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
		if let Some(block) = status.get("inBlock").and_then(|b| b.as_str()) {
			if let Ok(bytes) = hex::decode(block.trim_start_matches("0x")) {
				if bytes.len() == 32 {
					state.in_blocks.push(H256::from_slice(&bytes));
				}
			}
		} else if let Some(word) = status.as_str() {
			if matches!(word, "dropped" | "invalid") {
				state.gone = Some(word.to_string());
			}
		} else if status.get("usurped").is_some() {
			state.gone = Some("usurped".into());
		}
	}
	state.lock().unwrap_or_else(|p| p.into_inner()).ended = true;
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
		let ws = Rpc::new("ws://127.0.0.1:9944", b).unwrap();
		assert!(ws.subscribes());
		assert!(!Rpc::new("http://127.0.0.1:9944", b).unwrap().subscribes());
		assert_eq!(
			Rpc::new("https://node.example", b).unwrap().url(),
			"https://node.example"
		);
		assert!(matches!(
			Rpc::new("127.0.0.1:9944", b),
			Err(Error::Invalid(_))
		));
		let two = Rpc::new("ws://a:9944, ws://b:9944", b).unwrap();
		assert_eq!(two.url(), "ws://a:9944");
		for refused in ["", " , ", "ws://a:9944,http://b:9933", "ws://a:9944,b:9944"] {
			assert!(
				matches!(Rpc::new(refused, b), Err(Error::Invalid(_))),
				"{refused:?} accepted"
			);
		}
	}

	/// Answer one JSON-RPC request over HTTP on `listener` with `result`.
	fn answer_once(listener: std::net::TcpListener, result: Value) -> std::thread::JoinHandle<()> {
		use std::io::{Read, Write};
		std::thread::spawn(move || {
			let (mut stream, _) = listener.accept().unwrap();
			let mut request = Vec::new();
			let mut buf = [0u8; 4096];
			// Read the headers and the body they announce before answering.
			loop {
				let n = stream.read(&mut buf).unwrap();
				request.extend_from_slice(&buf[..n]);
				let text = String::from_utf8_lossy(&request).to_lowercase();
				if let Some(end) = text.find("\r\n\r\n") {
					let length = text
						.lines()
						.find_map(|l| l.strip_prefix("content-length:"))
						.and_then(|v| v.trim().parse::<usize>().ok())
						.unwrap_or(0);
					if request.len() >= end + 4 + length {
						break;
					}
				}
				assert!(n > 0, "request cut short");
			}
			let body = json!({"jsonrpc": "2.0", "id": 1, "result": result}).to_string();
			write!(
				stream,
				"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
				body.len()
			)
			.unwrap();
		})
	}

	#[test]
	fn a_dead_node_fails_over_to_the_next_without_waiting_out_the_backoff() {
		let dead = std::net::TcpListener::bind("127.0.0.1:0")
			.unwrap()
			.local_addr()
			.unwrap()
			.port();
		let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
		let live = listener.local_addr().unwrap().port();
		let server = answer_once(listener, json!("0x2a"));
		// A budget of a single retry: waiting on the dead node would spend it and give up.
		let single_retry = Backoff {
			initial: Duration::from_millis(1),
			max_delay: Duration::from_millis(1),
			give_up_after: Duration::from_millis(1),
		};
		let alone = Rpc::new(&format!("http://127.0.0.1:{dead}"), single_retry).unwrap();
		assert!(matches!(
			alone.call("system_health", json!([])),
			Err(Error::Unreachable { .. })
		));
		let rpc = Rpc::new(
			&format!("http://127.0.0.1:{dead},http://127.0.0.1:{live}"),
			single_retry,
		)
		.unwrap();
		assert_eq!(rpc.call("system_health", json!([])).unwrap(), json!("0x2a"));
		assert_eq!(rpc.url(), format!("http://127.0.0.1:{live}"));
		server.join().unwrap();
		// Both dead now: the whole list is named in the error.
		match rpc.call("system_health", json!([])) {
			Err(Error::Unreachable { url, .. }) => {
				assert!(
					url.contains(&dead.to_string()) && url.contains(&live.to_string()),
					"{url}"
				)
			}
			other => panic!("expected Unreachable, got {other:?}"),
		}
	}

	#[test]
	fn unreachable_node_gives_up_after_the_backoff() {
		// A port nobody listens on, over both transports.
		let port = std::net::TcpListener::bind("127.0.0.1:0")
			.unwrap()
			.local_addr()
			.unwrap()
			.port();
		for scheme in ["http", "ws"] {
			let rpc = Rpc::new(
				&format!("{scheme}://127.0.0.1:{port}"),
				Backoff {
					initial: Duration::from_millis(10),
					max_delay: Duration::from_millis(20),
					give_up_after: Duration::from_millis(60),
				},
			)
			.unwrap();
			match rpc.call("system_health", json!([])) {
				Err(Error::Unreachable { waited, .. }) => {
					assert!(waited >= Duration::from_millis(60))
				}
				other => panic!("{scheme}: expected Unreachable, got {other:?}"),
			}
		}
	}

	#[test]
	fn headers_hash_as_the_runtime_does() {
		use sp_runtime::traits::Header as _;
		let header = blade_fl_runtime::Header::new(
			7,
			H256::repeat_byte(1),
			H256::repeat_byte(2),
			H256::repeat_byte(3),
			Default::default(),
		);
		let head = parse_head(&serde_json::to_value(&header).unwrap()).unwrap();
		assert_eq!(head.number, 7);
		assert_eq!(head.parent, H256::repeat_byte(3));
		assert_eq!(
			head.hash,
			H256(sp_crypto_hashing::blake2_256(&codec::Encode::encode(
				&header
			)))
		);
		assert!(parse_head(&json!({"number": "0x7"})).is_err());
	}
}
