//! Transactions: signing, nonces, submission, confirmation at depth, reorg-safe re-sending.

use super::*;

/// A transaction sent and not yet confirmed.
#[derive(Clone, Debug)]
pub struct Pending {
	/// What it does.
	pub call: RuntimeCall,
	/// Blake2-256 of the encoded extrinsic.
	pub hash: H256,
	/// Its nonce.
	pub nonce: Nonce,
	/// The encoded extrinsic.
	pub bytes: Vec<u8>,
	/// Best block when first sent: inclusion is searched from here.
	pub from: BlockNumber,
	/// Best block when last sent.
	pub sent_at: BlockNumber,
	/// How often it was sent again.
	pub resent: u32,
}

/// A transaction being followed to its confirmation ([`Client::poll`]).
#[derive(Clone, Debug)]
pub struct Watch {
	/// The transaction (as last sent).
	pub pending: Pending,
	included: Option<(BlockNumber, H256)>,
	reorgs: u32,
}

impl Watch {
	/// Follow `pending`.
	pub fn new(pending: Pending) -> Watch {
		Watch {
			pending,
			included: None,
			reorgs: 0,
		}
	}

	/// The best-chain block (number, hash) it was last seen in.
	pub fn included(&self) -> Option<(BlockNumber, H256)> {
		self.included
	}
}

/// A transaction buried `confirmations` deep.
#[derive(Clone, Debug)]
pub struct Confirmed {
	/// The including block.
	pub block_hash: H256,
	/// Its number.
	pub block_number: BlockNumber,
	/// Index of the extrinsic in the block.
	pub index: u32,
	/// The extrinsic's events (ending with `ExtrinsicSuccess`).
	pub events: Vec<RuntimeEvent>,
	/// How often a reorg moved the transaction out of the block it was seen in.
	pub reorgs: u32,
	/// How often it was sent again (after a reorg or a restart dropped it).
	pub resent: u32,
}

impl Confirmed {
	/// Why the transaction failed on chain (its `ExtrinsicFailed` error, named where the
	/// pallet is known), or `None` if it succeeded.
	pub fn failure(&self) -> Option<String> {
		self.events.iter().find_map(|e| match e {
			RuntimeEvent::System(frame_system::Event::ExtrinsicFailed {
				dispatch_error, ..
			}) => Some(describe_error(dispatch_error)),
			_ => None,
		})
	}
}

impl Client {
	/// Sign `call` with `nonce`.
	pub fn sign(&self, call: RuntimeCall, nonce: Nonce) -> UncheckedExtrinsic {
		blade_fl_runtime::signed_extrinsic(
			call,
			&self.pair,
			nonce,
			self.genesis,
			self.spec_version,
			self.tx_version,
		)
	}

	pub(super) fn pool_nonce(&self) -> Result<Nonce> {
		let value = self
			.rpc
			.call("system_accountNextIndex", json!([self.account.to_string()]))?;
		value
			.as_u64()
			.map(|n| n as Nonce)
			.ok_or_else(|| Error::Decode {
				what: "system_accountNextIndex".into(),
				reason: value.to_string(),
			})
	}

	/// Sign `call` with the next nonce and send it; see [`Client::confirm`].
	pub fn submit(&mut self, call: RuntimeCall) -> Result<Pending> {
		let best = self.best_number()?;
		let mut pending = Pending {
			call,
			hash: H256::zero(),
			nonce: 0,
			bytes: Vec::new(),
			from: best.saturating_sub(1),
			sent_at: best,
			resent: 0,
		};
		self.send_fresh(&mut pending)?;
		Ok(pending)
	}

	/// (Re-)sign `pending` with the next free nonce and send it.
	pub(super) fn send_fresh(&mut self, pending: &mut Pending) -> Result<()> {
		// Clients of one process may sign for the same account (a service serving several
		// tasks): taking the pool's next nonce and sending under one lock keeps them from
		// signing two transactions with the same nonce.
		static SENDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
		let _sending = SENDING
			.lock()
			.unwrap_or_else(|poisoned| poisoned.into_inner());
		for attempt in 0..2 {
			let chain = self.pool_nonce()?;
			let nonce = self.next_nonce.map_or(chain, |n| n.max(chain));
			let xt = self.sign(pending.call.clone(), nonce);
			let bytes = xt.encode();
			match self.send_bytes(&bytes) {
				Ok(hash) => {
					self.next_nonce = Some(nonce.saturating_add(1));
					pending.hash = hash;
					pending.nonce = nonce;
					pending.bytes = bytes;
					tracing::debug!(call = %call_name(&pending.call), nonce, hash = ?hash, "sent");
					return Ok(());
				}
				Err(Error::Rpc { message, .. })
					if attempt == 0
						&& (message.contains("Stale")
							|| message.contains("Future")
							|| message.contains("Priority is too low")
							|| message.contains("bad signature")) =>
				{
					tracing::debug!(%message, "nonce or signature refused; refreshing");
					self.next_nonce = None;
					// A runtime upgrade changes the signed payload's spec version: a
					// transaction signed for the old one fails as a bad signature.
					self.refresh_version()?;
				}
				Err(e) => return Err(e),
			}
		}
		Err(Error::Timeout("a usable nonce".into()))
	}

	pub(super) fn send_bytes(&mut self, bytes: &[u8]) -> Result<H256> {
		let (hash, watch) = self.rpc.submit(bytes)?;
		if let Some(watch) = watch {
			self.watches.insert(hash, watch);
		}
		Ok(hash)
	}

	/// What the pool said about `hash`, if it is watched and the watch is still live.
	fn watched(&self, hash: H256) -> Option<TxState> {
		self.watches
			.get(&hash)
			.map(TxWatch::state)
			.filter(|state| !state.ended)
	}

	/// Where `hash` sits on the best chain, looking only at the blocks its watch announced
	/// it in (no block bodies downloaded for nothing). The outer `None` means the watch
	/// cannot tell (an announced block is older than the remembered chain, or the
	/// remembered chain starts after `from`): scan instead.
	#[allow(clippy::type_complexity)]
	fn find_announced(
		&mut self,
		hash: H256,
		blocks: &[H256],
		from: BlockNumber,
	) -> Result<Option<Option<(BlockNumber, H256, u32)>>> {
		let (first, numbers): (Option<BlockNumber>, Vec<Option<BlockNumber>>) = {
			let follow = self.follow.lock().unwrap_or_else(|p| p.into_inner());
			let numbers = blocks
				.iter()
				.map(|b| follow.canon.iter().find(|(_, h)| *h == b).map(|(n, _)| *n))
				.collect();
			(follow.canon.keys().next().copied(), numbers)
		};
		if first.is_none_or(|first| first > from) {
			return Ok(None);
		}
		for number in numbers.into_iter().rev().flatten() {
			if let Some(found) = self.find(hash, number, number)? {
				return Ok(Some(Some(found)));
			}
		}
		// Announced nowhere on the remembered best chain, which covers every block since
		// it was sent: not on chain (never included, or retracted by a reorg).
		Ok(Some(None))
	}

	/// Where `hash` sits on the best chain between blocks `from` and `to`, if it does.
	pub(super) fn find(
		&mut self,
		hash: H256,
		from: BlockNumber,
		to: BlockNumber,
	) -> Result<Option<(BlockNumber, H256, u32)>> {
		for n in from..=to {
			let Some(block) = self.block_hash(n)? else {
				continue;
			};
			if !self.seen.contains_key(&block) {
				let hashes = self
					.block_extrinsics(block)?
					.iter()
					.map(|x| H256(sp_crypto_hashing::blake2_256(x)))
					.collect();
				self.seen.insert(block, hashes);
			}
			if let Some(index) = self.seen[&block].iter().position(|h| *h == hash) {
				return Ok(Some((n, block, index as u32)));
			}
		}
		Ok(None)
	}

	pub(super) fn in_pool(&self, bytes: &[u8]) -> Result<bool> {
		let wanted = format!("0x{}", hex::encode(bytes));
		let pool = self.rpc.call("author_pendingExtrinsics", json!([]))?;
		Ok(pool
			.as_array()
			.is_some_and(|list| list.iter().any(|x| x.as_str() == Some(&wanted))))
	}

	/// Send `pending` again after a reorg or a node restart dropped it.
	pub(super) fn resend(&mut self, pending: &mut Pending, best: BlockNumber) -> Result<()> {
		pending.resent += 1;
		pending.sent_at = best;
		let on_chain = self.account_info(&self.account.clone(), None)?.nonce;
		if on_chain <= pending.nonce {
			match self.send_bytes(&pending.bytes) {
				Ok(_) => return Ok(()),
				Err(Error::Rpc { message, .. }) if message.contains("Already Imported") => {
					return Ok(())
				}
				Err(Error::Rpc { message, .. }) => {
					tracing::debug!(%message, "resend refused; re-signing");
				}
				Err(e) => return Err(e),
			}
		}
		// Its nonce is spent, or the node refused the old bytes. Spent by the original
		// itself, landed since the last look? Never re-sign before searching the best chain
		// for it: a second signature would be a second transaction (a second escrow).
		let now = self.best_number()?;
		if let Some((number, _, _)) = self.find(pending.hash, pending.from, now)? {
			tracing::debug!(call = %call_name(&pending.call), block = number, "the original landed meanwhile; not re-signing");
			return Ok(());
		}
		// Its nonce went to another transaction: sign it anew.
		self.next_nonce = None;
		self.send_fresh(pending)
	}

	/// Look once at where `watch`'s transaction stands: `Some` once it is `confirmations`
	/// deep on the best chain. Notices a reorg that moved or dropped it and re-sends it
	/// when it is neither on chain nor in the pool (reorg, restarted node).
	pub fn poll(&mut self, watch: &mut Watch) -> Result<Option<Confirmed>> {
		let best = self.best_number()?;
		let pending = &mut watch.pending;
		// Watched over WebSocket: look only where the pool said it went (no block bodies
		// downloaded for nothing); otherwise scan every block since it was sent.
		let status = self.watched(pending.hash);
		let found = match &status {
			Some(state) => {
				match self.find_announced(pending.hash, &state.in_blocks, pending.from)? {
					Some(found) => found,
					None => self.find(pending.hash, pending.from, best)?,
				}
			}
			None => self.find(pending.hash, pending.from, best)?,
		};
		match found {
			Some((number, block, index)) => {
				if watch.included.is_some_and(|(_, seen)| seen != block) {
					watch.reorgs += 1;
					tracing::warn!(call = %call_name(&pending.call), block = number, "reorg moved the transaction to another block");
				}
				watch.included = Some((number, block));
				if best >= number.saturating_add(self.confirmations) {
					self.watches.remove(&pending.hash);
					let events = self
						.event_records(block)?
						.into_iter()
						.filter(|r| r.phase == frame_system::Phase::ApplyExtrinsic(index))
						.map(|r| r.event)
						.collect();
					return Ok(Some(Confirmed {
						block_hash: block,
						block_number: number,
						index,
						events,
						reorgs: watch.reorgs,
						resent: pending.resent,
					}));
				}
			}
			None => {
				let resend = if let Some((number, _)) = watch.included.take() {
					watch.reorgs += 1;
					tracing::warn!(call = %call_name(&pending.call), block = number, "reorg dropped the transaction; sending it again");
					true
				} else if best >= pending.sent_at.saturating_add(self.patience)
					&& !match &status {
						Some(state) => state.gone.is_none(),
						None => self.in_pool(&pending.bytes)?,
					} {
					tracing::warn!(call = %call_name(&pending.call), "transaction neither on chain nor in the pool (node restarted?); sending it again");
					true
				} else {
					false
				};
				if resend {
					let old = watch.pending.hash;
					self.resend(&mut watch.pending, best)?;
					if watch.pending.hash != old {
						self.watches.remove(&old);
					}
				}
			}
		}
		Ok(None)
	}

	/// Wait until `pending` is `confirmations` deep on the best chain and return its
	/// block and events; see [`Client::poll`].
	pub fn confirm(&mut self, pending: Pending) -> Result<Confirmed> {
		let deadline = Instant::now() + self.timeout;
		let mut watch = Watch::new(pending);
		loop {
			if let Some(confirmed) = self.poll(&mut watch)? {
				return Ok(confirmed);
			}
			if Instant::now() > deadline {
				return Err(Error::Timeout(format!(
					"{} to be {} blocks deep",
					call_name(&watch.pending.call),
					self.confirmations
				)));
			}
			self.wait_new_head(deadline.saturating_duration_since(Instant::now()))?;
		}
	}

	/// Submit `call`, wait for its confirmation and fail with [`Error::Dispatch`] if it
	/// failed on chain.
	pub fn execute(&mut self, call: RuntimeCall) -> Result<Confirmed> {
		let name = call_name(&call);
		let pending = self.submit(call)?;
		let confirmed = self.confirm(pending)?;
		if let Some(error) = confirmed.failure() {
			return Err(Error::Dispatch { call: name, error });
		}
		tracing::info!(call = %name, block = confirmed.block_number, "confirmed");
		Ok(confirmed)
	}

	/// Submit an FL call; see [`Client::execute`].
	pub fn fl(&mut self, call: FlCall) -> Result<Confirmed> {
		self.execute(RuntimeCall::FlTasks(call))
	}
}
