//! Helpers for tests that run the real `blade-fl-node` binary on loopback ports.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::{
	fs::File,
	io::{Read, Write},
	net::{TcpListener, TcpStream},
	path::{Path, PathBuf},
	process::{Child, Command, ExitStatus, Stdio},
	time::{Duration, Instant},
};

use blade_fl_runtime::{
	AccountId, Balance, Nonce, Runtime, RuntimeCall, RuntimeEvent, UncheckedExtrinsic,
};
use codec::{Decode, Encode};
use serde_json::{json, Value};
use sp_core::H256;
use sp_keyring::Sr25519Keyring;

/// A free TCP port on 127.0.0.1 (the OS picks it; the listener is closed again).
pub fn free_port() -> u16 {
	TcpListener::bind("127.0.0.1:0")
		.unwrap()
		.local_addr()
		.unwrap()
		.port()
}

/// A running node; stopped with SIGINT (then SIGKILL) when dropped.
pub struct Node {
	pub name: String,
	pub child: Option<Child>,
	pub rpc_port: u16,
	pub p2p_port: u16,
	pub prometheus_port: u16,
	pub log_path: PathBuf,
	pub base_path: PathBuf,
}

/// Fixed node key of test node A, so B can name it as a bootnode.
pub const NODE_KEY_A: &str = "0000000000000000000000000000000000000000000000000000000000000001";
/// Peer id that `NODE_KEY_A` yields (printed by `blade-fl-node key inspect-node-key`).
pub const PEER_ID_A: &str = "12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp";

impl Node {
	/// Start `blade-fl-node` with `args` plus loopback-only ports, in `base_path`.
	pub fn start(name: &str, base_path: &Path, args: &[&str]) -> Node {
		let rpc_port = free_port();
		let p2p_port = free_port();
		let prometheus_port = free_port();
		let log_path = base_path.join(format!("{name}.log"));
		let log = File::create(&log_path).unwrap();
		let child = Command::new(env!("CARGO_BIN_EXE_blade-fl-node"))
			.args(args)
			.args(["--base-path", base_path.join(name).to_str().unwrap()])
			.args(["--rpc-port", &rpc_port.to_string()])
			.args(["--listen-addr", &format!("/ip4/127.0.0.1/tcp/{p2p_port}")])
			.args(["--prometheus-port", &prometheus_port.to_string()])
			.args(["--name", name, "--no-mdns", "--no-telemetry"])
			.arg("--rpc-methods=unsafe")
			.stdout(Stdio::null())
			.stderr(log)
			.spawn()
			.expect("spawn blade-fl-node");
		let mut node = Node {
			name: name.into(),
			child: Some(child),
			rpc_port,
			p2p_port,
			prometheus_port,
			log_path,
			base_path: base_path.to_path_buf(),
		};
		node.wait_for_rpc(Duration::from_secs(120));
		node
	}

	/// The node's log so far.
	pub fn log(&self) -> String {
		std::fs::read_to_string(&self.log_path).unwrap_or_default()
	}

	fn wait_for_rpc(&mut self, timeout: Duration) {
		let deadline = Instant::now() + timeout;
		while Instant::now() < deadline {
			if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
				panic!(
					"{} exited with {status} before serving RPC; log:\n{}",
					self.name,
					self.log()
				);
			}
			if rpc(self.rpc_port, "system_health", json!([])).is_ok() {
				return;
			}
			std::thread::sleep(Duration::from_millis(250));
		}
		panic!("{} never answered RPC; log:\n{}", self.name, self.log());
	}

	/// Call an RPC method; panics with the node log on transport errors.
	pub fn rpc(&self, method: &str, params: Value) -> Result<Value, Value> {
		rpc(self.rpc_port, method, params).unwrap_or_else(|e| {
			panic!(
				"RPC {method} to {} failed: {e}\nlog:\n{}",
				self.name,
				self.log()
			)
		})
	}

	/// Best block number.
	pub fn best_number(&self) -> u32 {
		let header = self.rpc("chain_getHeader", json!([])).unwrap();
		parse_hex_u32(header["number"].as_str().unwrap())
	}

	/// Wait until the best block is at least `n`.
	pub fn wait_for_block(&self, n: u32, timeout: Duration) -> u32 {
		let deadline = Instant::now() + timeout;
		loop {
			let best = self.best_number();
			if best >= n {
				return best;
			}
			assert!(
				Instant::now() < deadline,
				"{}: block {n} not reached in {timeout:?} (best {best}); log tail:\n{}",
				self.name,
				tail(&self.log(), 40)
			);
			std::thread::sleep(Duration::from_millis(300));
		}
	}

	/// Hash of block `n` on this node's best chain.
	pub fn block_hash(&self, n: u32) -> Option<H256> {
		let value = self.rpc("chain_getBlockHash", json!([n])).unwrap();
		value.as_str().map(parse_h256)
	}

	/// Raw storage at `key`, at `at` (best block if `None`).
	pub fn storage(&self, key: &[u8], at: Option<H256>) -> Option<Vec<u8>> {
		let at = at.map(|h| json!(format!("{h:?}"))).unwrap_or(Value::Null);
		let value = self
			.rpc(
				"state_getStorage",
				json!([format!("0x{}", hex::encode(key)), at]),
			)
			.unwrap();
		value
			.as_str()
			.map(|s| hex::decode(s.trim_start_matches("0x")).unwrap())
	}

	/// Call runtime API `method` (e.g. `FlTasksApi_task`) with SCALE `args` at the best
	/// block and decode the answer.
	pub fn state_call<R: Decode>(&self, method: &str, args: &[u8]) -> R {
		let value = self
			.rpc(
				"state_call",
				json!([method, format!("0x{}", hex::encode(args))]),
			)
			.unwrap();
		let bytes = hex::decode(value.as_str().unwrap().trim_start_matches("0x")).unwrap();
		R::decode(&mut &bytes[..]).unwrap()
	}

	/// The extrinsics of block `hash`, as SCALE bytes.
	pub fn block_extrinsics(&self, hash: H256) -> Vec<Vec<u8>> {
		let block = self
			.rpc("chain_getBlock", json!([format!("{hash:?}")]))
			.unwrap();
		block["block"]["extrinsics"]
			.as_array()
			.unwrap()
			.iter()
			.map(|x| hex::decode(x.as_str().unwrap().trim_start_matches("0x")).unwrap())
			.collect()
	}

	/// Free balance of `who` at `at`.
	pub fn free_balance(&self, who: &AccountId, at: Option<H256>) -> Balance {
		let key = frame_system::Account::<Runtime>::hashed_key_for(who);
		self.storage(&key, at)
			.map(|raw| {
				frame_system::AccountInfo::<Nonce, pallet_balances::AccountData<Balance>>::decode(
					&mut &raw[..],
				)
				.unwrap()
				.data
				.free
			})
			.unwrap_or(0)
	}

	/// Event records (with their phase) of block `at`.
	pub fn event_records(&self, at: H256) -> Vec<frame_system::EventRecord<RuntimeEvent, H256>> {
		let raw = self.storage(&events_key(), Some(at)).unwrap_or_default();
		if raw.is_empty() {
			return Vec::new();
		}
		Decode::decode(&mut &raw[..]).unwrap()
	}

	/// Events emitted in block `at`.
	pub fn events(&self, at: H256) -> Vec<RuntimeEvent> {
		self.event_records(at)
			.into_iter()
			.map(|record| record.event)
			.collect()
	}

	/// Decoded header of block `hash`.
	pub fn header(&self, hash: H256) -> blade_fl_runtime::Header {
		let value = self
			.rpc("chain_getHeader", json!([format!("{hash:?}")]))
			.unwrap();
		let number = parse_hex_u32(value["number"].as_str().unwrap());
		let parent = parse_h256(value["parentHash"].as_str().unwrap());
		let state_root = parse_h256(value["stateRoot"].as_str().unwrap());
		let extrinsics_root = parse_h256(value["extrinsicsRoot"].as_str().unwrap());
		let logs = value["digest"]["logs"]
			.as_array()
			.unwrap()
			.iter()
			.map(|log| {
				let bytes = hex::decode(log.as_str().unwrap().trim_start_matches("0x")).unwrap();
				sp_runtime::DigestItem::decode(&mut &bytes[..]).unwrap()
			})
			.collect();
		blade_fl_runtime::Header {
			parent_hash: parent,
			number,
			state_root,
			extrinsics_root,
			digest: sp_runtime::Digest { logs },
		}
	}

	/// Sign `call` as `signer` with the on-chain nonce and submit it; returns the tx hash.
	pub fn submit(&self, signer: Sr25519Keyring, call: RuntimeCall) -> Result<H256, Value> {
		let xt = self.sign(signer, call, None);
		self.submit_raw(&xt.encode())
	}

	/// Submit already-encoded extrinsic bytes.
	pub fn submit_raw(&self, bytes: &[u8]) -> Result<H256, Value> {
		self.rpc(
			"author_submitExtrinsic",
			json!([format!("0x{}", hex::encode(bytes))]),
		)
		.map(|v| parse_h256(v.as_str().unwrap()))
	}

	/// A signed extrinsic for this chain (`nonce` from the node when `None`).
	pub fn sign(
		&self,
		signer: Sr25519Keyring,
		call: RuntimeCall,
		nonce: Option<Nonce>,
	) -> UncheckedExtrinsic {
		let who = signer.to_account_id();
		let nonce = nonce.unwrap_or_else(|| {
			let v = self
				.rpc("system_accountNextIndex", json!([who.to_string()]))
				.unwrap();
			v.as_u64().unwrap() as Nonce
		});
		let genesis = self.block_hash(0).unwrap();
		let version = self.rpc("state_getRuntimeVersion", json!([])).unwrap();
		blade_fl_runtime::signed_extrinsic(
			call,
			&signer.pair(),
			nonce,
			genesis,
			version["specVersion"].as_u64().unwrap() as u32,
			version["transactionVersion"].as_u64().unwrap() as u32,
		)
	}

	/// Wait until an extrinsic with this hash is in a block of the best chain; returns
	/// the block hash and the events of that extrinsic.
	pub fn wait_for_inclusion(
		&self,
		xt_hash: H256,
		timeout: Duration,
	) -> (H256, Vec<RuntimeEvent>) {
		let deadline = Instant::now() + timeout;
		let mut next = self.best_number().saturating_sub(1);
		loop {
			let best = self.best_number();
			while next <= best {
				let hash = self.block_hash(next).unwrap();
				let block = self
					.rpc("chain_getBlock", json!([format!("{hash:?}")]))
					.unwrap();
				let extrinsics = block["block"]["extrinsics"].as_array().unwrap();
				for (index, xt) in extrinsics.iter().enumerate() {
					let bytes = hex::decode(xt.as_str().unwrap().trim_start_matches("0x")).unwrap();
					if H256(sp_crypto_hashing::blake2_256(&bytes)) == xt_hash {
						let events = self
							.event_records(hash)
							.into_iter()
							.filter(|r| {
								r.phase == frame_system::Phase::ApplyExtrinsic(index as u32)
							})
							.map(|r| r.event)
							.collect();
						return (hash, events);
					}
				}
				next += 1;
			}
			assert!(
				Instant::now() < deadline,
				"{}: extrinsic {xt_hash:?} not included in {timeout:?}; log tail:\n{}",
				self.name,
				tail(&self.log(), 40)
			);
			std::thread::sleep(Duration::from_millis(300));
		}
	}

	/// Send SIGINT and wait for the process to exit.
	pub fn stop(&mut self) -> ExitStatus {
		let mut child = self.child.take().expect("node running");
		if let Some(status) = child.try_wait().unwrap() {
			return status;
		}
		let _ = Command::new("kill")
			.args(["-INT", &child.id().to_string()])
			.status();
		let deadline = Instant::now() + Duration::from_secs(60);
		loop {
			if let Some(status) = child.try_wait().unwrap() {
				return status;
			}
			if Instant::now() > deadline {
				let _ = child.kill();
				return child.wait().unwrap();
			}
			std::thread::sleep(Duration::from_millis(100));
		}
	}
}

impl Drop for Node {
	fn drop(&mut self) {
		if self.child.is_some() {
			self.stop();
		}
	}
}

/// Storage key of `System::Events` (the storage item is private to frame-system).
pub fn events_key() -> Vec<u8> {
	[
		sp_crypto_hashing::twox_128(b"System"),
		sp_crypto_hashing::twox_128(b"Events"),
	]
	.concat()
}

/// The author in a header's `PreRuntime(*b"pow_")` digest.
pub fn pow_author(header: &blade_fl_runtime::Header) -> Option<AccountId> {
	header.digest.logs.iter().find_map(|item| match item {
		sp_runtime::DigestItem::PreRuntime(sp_consensus_pow::POW_ENGINE_ID, data) => {
			AccountId::decode(&mut &data[..]).ok()
		}
		_ => None,
	})
}

pub fn parse_h256(s: &str) -> H256 {
	let bytes = hex::decode(s.trim_start_matches("0x")).unwrap();
	H256::from_slice(&bytes)
}

pub fn parse_hex_u32(s: &str) -> u32 {
	u32::from_str_radix(s.trim_start_matches("0x"), 16).unwrap()
}

pub fn tail(text: &str, lines: usize) -> String {
	let all: Vec<&str> = text.lines().collect();
	all[all.len().saturating_sub(lines)..].join("\n")
}

/// Minimal JSON-RPC over HTTP/1.1 (the node serves HTTP and WebSocket on one port).
/// `Err(String)` for transport failures; `Ok(Err(error))` for JSON-RPC errors.
pub fn rpc(port: u16, method: &str, params: Value) -> Result<Result<Value, Value>, String> {
	let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
	let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
	stream
		.set_read_timeout(Some(Duration::from_secs(30)))
		.map_err(|e| e.to_string())?;
	write!(
		stream,
		"POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
		body.len(),
		body
	)
	.map_err(|e| e.to_string())?;
	let mut response = Vec::new();
	stream
		.read_to_end(&mut response)
		.map_err(|e| e.to_string())?;
	let text = String::from_utf8_lossy(&response);
	let (head, body) = text
		.split_once("\r\n\r\n")
		.ok_or("malformed HTTP response")?;
	let body = if head
		.to_ascii_lowercase()
		.contains("transfer-encoding: chunked")
	{
		dechunk(body)
	} else {
		body.to_string()
	};
	let value: Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
	Ok(match value.get("error") {
		Some(error) => Err(error.clone()),
		None => Ok(value["result"].clone()),
	})
}

fn dechunk(mut body: &str) -> String {
	let mut out = String::new();
	while let Some((size, rest)) = body.split_once("\r\n") {
		let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
		if size == 0 {
			break;
		}
		out.push_str(&rest[..size]);
		body = rest[size..].trim_start_matches("\r\n");
	}
	out
}
