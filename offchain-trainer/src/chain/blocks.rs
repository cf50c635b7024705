//! Blocks: heads, the confirmed head, block bodies and events, blobs out of extrinsics.

use super::*;

impl Client {
	fn follow(&self) -> std::sync::MutexGuard<'_, Follow> {
		self.follow.lock().unwrap_or_else(|p| p.into_inner())
	}

	/// The best head. Subscribed: the last announced one, costing no call (the map of
	/// recent best-chain blocks is brought up to date with it); polling: one call.
	pub fn best_head(&self) -> Result<Head> {
		let mut follow = self.follow();
		let head = follow.heads.best()?;
		if follow.heads.subscribed() {
			self.reconcile(&mut follow, head)?;
		}
		Ok(head)
	}

	/// Best block number.
	pub fn best_number(&self) -> Result<BlockNumber> {
		Ok(self.best_head()?.number)
	}

	/// Wait for the best head to move (at most `limit`): subscribed, until the next
	/// announcement; polling, one poll interval.
	pub fn wait_new_head(&self, limit: Duration) -> Result<()> {
		let started = std::time::Instant::now();
		let mut follow = self.follow();
		let result = follow.heads.wait_new(limit);
		follow.waited += started.elapsed();
		result
	}

	/// Total time spent waiting for new blocks ([`Client::wait_new_head`], which every
	/// wait for a phase, an inclusion or a confirmation goes through) since connecting.
	/// Backoff sleeps while the node is unreachable are not in it (they are client time).
	pub fn waited(&self) -> Duration {
		self.follow().waited
	}

	/// Whether heads arrive by subscription.
	pub fn subscribed(&self) -> bool {
		self.follow().heads.subscribed()
	}

	/// Record `head` as the best and correct the blocks below it that a reorg replaced,
	/// walking parent hashes back until they meet what is already known.
	fn reconcile(&self, follow: &mut Follow, head: Head) -> Result<()> {
		if follow.canon.get(&head.number) == Some(&head.hash) {
			return Ok(());
		}
		follow.canon.split_off(&head.number.saturating_add(1));
		follow.canon.insert(head.number, head.hash);
		let lowest = head.number.saturating_sub(CANON_KEEP);
		follow.canon = follow.canon.split_off(&lowest);
		let Some(&first) = follow.canon.keys().next() else {
			return Ok(());
		};
		let (mut number, mut parent) = (head.number, head.parent);
		let mut steps = 0u32;
		while number > first {
			number -= 1;
			if follow.canon.get(&number) == Some(&parent) {
				break;
			}
			if steps >= CANON_WALK {
				tracing::warn!(depth = steps, "deep reorg; forgetting the remembered chain");
				follow.canon.retain(|n, _| *n > number);
				break;
			}
			follow.canon.insert(number, parent);
			let header = self
				.rpc
				.call("chain_getHeader", json!([format!("{parent:?}")]))?;
			if header.is_null() {
				follow.canon.retain(|n, _| *n >= number);
				break;
			}
			parent = rpc::parse_head(&header)?.parent;
			steps += 1;
		}
		Ok(())
	}

	/// The timestamp (ms, `Timestamp::Now`) of best-chain block `number`.
	pub fn timestamp_at(&self, number: BlockNumber) -> Result<Option<u64>> {
		let Some(hash) = self.block_hash(number)? else {
			return Ok(None);
		};
		let key = [
			sp_crypto_hashing::twox_128(b"Timestamp"),
			sp_crypto_hashing::twox_128(b"Now"),
		]
		.concat();
		Ok(self
			.storage(&key, Some(hash))?
			.and_then(|raw| <u64 as codec::Decode>::decode(&mut &raw[..]).ok()))
	}

	/// Mean block time (seconds) over best-chain blocks `from..to` (`None` for fewer than
	/// two blocks).
	pub fn mean_block_time(&self, from: BlockNumber, to: BlockNumber) -> Result<Option<f64>> {
		if to <= from + 1 {
			return Ok(None);
		}
		let (Some(a), Some(b)) = (self.timestamp_at(from.max(1))?, self.timestamp_at(to)?) else {
			return Ok(None);
		};
		Ok(Some(
			(b.saturating_sub(a)) as f64 / 1000.0 / f64::from(to - from.max(1)),
		))
	}

	/// Hash of block `n` of the best chain.
	pub fn block_hash(&self, n: BlockNumber) -> Result<Option<H256>> {
		if self.subscribed() {
			let head = self.best_head()?;
			if n > head.number {
				return Ok(None);
			}
			if let Some(hash) = self.follow().canon.get(&n) {
				return Ok(Some(*hash));
			}
		}
		let value = self.rpc.call("chain_getBlockHash", json!([n]))?;
		if value.is_null() {
			return Ok(None);
		}
		parse_h256(&value, "block hash").map(Some)
	}

	/// The block `confirmations` below the best one, and its number: state read there
	/// will not be undone by a reorg shallower than the confirmation depth.
	pub fn confirmed_head(&self) -> Result<(BlockNumber, H256)> {
		let best = self.best_number()?;
		let n = best.saturating_sub(self.confirmations);
		let hash = self
			.block_hash(n)?
			.ok_or_else(|| Error::Timeout(format!("block {n} (reorg in progress?)")))?;
		Ok((n, hash))
	}

	/// The extrinsics of block `hash`, SCALE-encoded.
	pub fn block_extrinsics(&self, hash: H256) -> Result<Vec<Vec<u8>>> {
		let block = self
			.rpc
			.call("chain_getBlock", json!([format!("{hash:?}")]))?;
		let Some(list) = block["block"]["extrinsics"].as_array() else {
			return Err(Error::Timeout(format!(
				"block {hash:?} (unknown to the node)"
			)));
		};
		list.iter().map(|x| parse_bytes(x, "extrinsic")).collect()
	}

	/// Event records of block `hash`.
	pub fn event_records(
		&self,
		hash: H256,
	) -> Result<Vec<frame_system::EventRecord<RuntimeEvent, H256>>> {
		let key = [
			sp_crypto_hashing::twox_128(b"System"),
			sp_crypto_hashing::twox_128(b"Events"),
		]
		.concat();
		match self.storage(&key, Some(hash))? {
			None => Ok(Vec::new()),
			Some(raw) => Decode::decode(&mut &raw[..]).map_err(|e| Error::Decode {
				what: "System.Events".into(),
				reason: e.to_string(),
			}),
		}
	}

	/// The decoded extrinsic at (`block`, `index`) of the best chain.
	pub fn extrinsic_at(&self, block: BlockNumber, index: u32) -> Result<UncheckedExtrinsic> {
		let hash = self
			.block_hash(block)?
			.ok_or_else(|| Error::Timeout(format!("block {block}")))?;
		let all = self.block_extrinsics(hash)?;
		let bytes = all.get(index as usize).ok_or_else(|| Error::Decode {
			what: format!("extrinsic {block}-{index}"),
			reason: format!("block has {} extrinsics", all.len()),
		})?;
		UncheckedExtrinsic::decode(&mut &bytes[..]).map_err(|e| Error::Decode {
			what: format!("extrinsic {block}-{index}"),
			reason: e.to_string(),
		})
	}

	/// Download the blob of a `submit_update` or `publish_aggregate` extrinsic at
	/// (`block`, `index`) and check it against `hash`.
	pub fn blob_at(&self, block: BlockNumber, index: u32, hash: H256) -> Result<Vec<u8>> {
		let xt = self.extrinsic_at(block, index)?;
		let blob = match xt.function {
			RuntimeCall::FlTasks(FlCall::submit_update { blob, .. })
			| RuntimeCall::FlTasks(FlCall::publish_aggregate { blob, .. }) => blob.into_inner(),
			other => {
				return Err(Error::Decode {
					what: format!("extrinsic {block}-{index}"),
					reason: format!("not an update or aggregate: {other:?}"),
				})
			}
		};
		let actual = H256(crate::codec::hash(&blob));
		if actual != hash {
			return Err(Error::Decode {
				what: format!("blob {block}-{index}"),
				reason: format!("hash {actual:?}, the chain recorded {hash:?}"),
			});
		}
		Ok(blob)
	}

	/// The last published global model of `task`: its round and blob. While the task is
	/// live the runtime API points at it; once settled its storage is gone, so the last
	/// `scan` blocks are searched for its last successful `publish_aggregate`.
	pub fn final_model(&self, task: TaskId, scan: u32) -> Result<Option<(RoundIndex, Vec<u8>)>> {
		if let Some(view) = self.task(task, None)? {
			for round in (0..view.spec.rounds).rev() {
				if let Some(GlobalModel {
					hash,
					published: Some((block, index)),
					..
				}) = self.global_model(task, round, None)?
				{
					return Ok(Some((round, self.blob_at(block, index, hash)?)));
				}
			}
			return Ok(None);
		}
		let best = self.best_number()?;
		for n in (best.saturating_sub(scan)..=best).rev() {
			let Some(hash) = self.block_hash(n)? else {
				continue;
			};
			let extrinsics = self.block_extrinsics(hash)?;
			let events = self.event_records(hash)?;
			for (index, bytes) in extrinsics.iter().enumerate().rev() {
				let Ok(xt) = UncheckedExtrinsic::decode(&mut &bytes[..]) else {
					continue;
				};
				let RuntimeCall::FlTasks(FlCall::publish_aggregate {
					task: t,
					round,
					blob,
				}) = xt.function
				else {
					continue;
				};
				let succeeded = events.iter().any(|r| {
					r.phase == frame_system::Phase::ApplyExtrinsic(index as u32)
						&& matches!(
							r.event,
							RuntimeEvent::System(frame_system::Event::ExtrinsicSuccess { .. })
						)
				});
				if t == task && succeeded {
					return Ok(Some((round, blob.into_inner())));
				}
			}
		}
		Ok(None)
	}
}
