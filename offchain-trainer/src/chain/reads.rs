//! State reads: the `FlTasksApi` runtime API, raw storage, accounts (what subxt calls
//! `storage` and `runtime_api`).

use super::*;

impl Client {
	/// Call runtime API `method` with SCALE `args` at `at` (best block if `None`).
	pub fn state_call<R: Decode>(
		&self,
		method: &str,
		args: impl Encode,
		at: Option<H256>,
	) -> Result<R> {
		let at = at.map(|h| json!(format!("{h:?}"))).unwrap_or(Value::Null);
		let value = self.rpc.call(
			"state_call",
			json!([method, format!("0x{}", hex::encode(args.encode())), at]),
		)?;
		let bytes = parse_bytes(&value, method)?;
		R::decode(&mut &bytes[..]).map_err(|e| Error::Decode {
			what: method.into(),
			reason: e.to_string(),
		})
	}

	/// Tasks not yet settled, with their current phase end.
	pub fn active_tasks(&self, at: Option<H256>) -> Result<Vec<(TaskId, BlockNumber)>> {
		let active: Vec<pallet_fl_tasks::ActiveTask<BlockNumber>> =
			self.state_call("FlTasksApi_active_tasks", (), at)?;
		Ok(active.into_iter().map(|a| (a.task, a.phase_end)).collect())
	}

	/// A task, `None` once settled (or never published).
	pub fn task(&self, task: TaskId, at: Option<H256>) -> Result<Option<TaskView>> {
		self.state_call("FlTasksApi_task", task, at)
	}

	/// Bids of a task in bidding.
	pub fn bids(&self, task: TaskId, at: Option<H256>) -> Result<Vec<(AccountId, Bid)>> {
		let bids: Vec<pallet_fl_tasks::BidEntry<AccountId, Balance>> =
			self.state_call("FlTasksApi_bids", task, at)?;
		Ok(bids.into_iter().map(|e| (e.bidder, e.bid)).collect())
	}

	/// Selected trainers of a task.
	pub fn participants(
		&self,
		task: TaskId,
		at: Option<H256>,
	) -> Result<Vec<(AccountId, Participant)>> {
		let all: Vec<pallet_fl_tasks::ParticipantEntry<AccountId, Balance>> =
			self.state_call("FlTasksApi_participants", task, at)?;
		Ok(all
			.into_iter()
			.map(|e| (e.trainer, e.participant))
			.collect())
	}

	/// This round's updates.
	pub fn updates(
		&self,
		task: TaskId,
		at: Option<H256>,
	) -> Result<Vec<(AccountId, UpdateRecord)>> {
		let all: Vec<pallet_fl_tasks::UpdateEntry<AccountId, BlockNumber>> =
			self.state_call("FlTasksApi_updates", task, at)?;
		Ok(all.into_iter().map(|e| (e.trainer, e.update)).collect())
	}

	/// This round's vote tallies.
	pub fn tallies(&self, task: TaskId, at: Option<H256>) -> Result<Vec<Tally>> {
		self.state_call("FlTasksApi_tallies", task, at)
	}

	/// The global model of a finalised round.
	pub fn global_model(
		&self,
		task: TaskId,
		round: RoundIndex,
		at: Option<H256>,
	) -> Result<Option<GlobalModel>> {
		self.state_call("FlTasksApi_global_model", (task, round), at)
	}

	/// Reputation of `who`.
	pub fn reputation(&self, who: &AccountId, at: Option<H256>) -> Result<Perbill> {
		self.state_call("FlTasksApi_reputation", who, at)
	}

	/// The commitment the chain expects from `who` for `seed`, computed by the runtime
	/// (the same as [`commitment`], which needs no call).
	pub fn seed_commitment(&self, who: &AccountId, seed: &Seed, at: Option<H256>) -> Result<H256> {
		self.state_call("FlTasksApi_seed_commitment", (who, seed), at)
	}

	/// Raw storage at `key`.
	pub fn storage(&self, key: &[u8], at: Option<H256>) -> Result<Option<Vec<u8>>> {
		let at = at.map(|h| json!(format!("{h:?}"))).unwrap_or(Value::Null);
		let value = self.rpc.call(
			"state_getStorage",
			json!([format!("0x{}", hex::encode(key)), at]),
		)?;
		if value.is_null() {
			return Ok(None);
		}
		parse_bytes(&value, "storage").map(Some)
	}

	/// Nonce and balances of `who`.
	pub fn account_info(&self, who: &AccountId, at: Option<H256>) -> Result<Account> {
		let key = frame_system::Account::<Runtime>::hashed_key_for(who);
		let Some(raw) = self.storage(&key, at)? else {
			return Ok(Account::default());
		};
		let info =
			frame_system::AccountInfo::<Nonce, pallet_balances::AccountData<Balance>>::decode(
				&mut &raw[..],
			)
			.map_err(|e| Error::Decode {
				what: "System.Account".into(),
				reason: e.to_string(),
			})?;
		Ok(Account {
			nonce: info.nonce,
			free: info.data.free,
			held: info.data.reserved,
		})
	}

	/// The ledger at block `at`: `Balances.TotalIssuance` and the sum of free plus held
	/// balance over every account in `System.Account` (read page by page). On a sound chain
	/// the two are equal: whatever is minted, burnt, slashed or moved, every unit is in
	/// exactly one account.
	pub fn ledger(&self, at: H256) -> Result<Ledger> {
		let issuance_key = pallet_balances::TotalIssuance::<Runtime>::hashed_key();
		let issuance = match self.storage(&issuance_key, Some(at))? {
			Some(raw) => Balance::decode(&mut &raw[..]).map_err(|e| Error::Decode {
				what: "Balances.TotalIssuance".into(),
				reason: e.to_string(),
			})?,
			None => 0,
		};
		let prefix = [
			sp_crypto_hashing::twox_128(b"System"),
			sp_crypto_hashing::twox_128(b"Account"),
		]
		.concat();
		let mut ledger = Ledger {
			issuance,
			..Ledger::default()
		};
		let mut start: Option<String> = None;
		loop {
			let keys = self.rpc.call(
				"state_getKeysPaged",
				json!([
					format!("0x{}", hex::encode(&prefix)),
					500,
					start,
					format!("{at:?}")
				]),
			)?;
			let keys: Vec<String> = serde_json::from_value(keys).map_err(|e| Error::Decode {
				what: "state_getKeysPaged".into(),
				reason: e.to_string(),
			})?;
			for key in &keys {
				let raw = parse_bytes(&json!(key), "account key")?;
				let Some(value) = self.storage(&raw, Some(at))? else {
					continue;
				};
				let info = frame_system::AccountInfo::<Nonce, pallet_balances::AccountData<Balance>>::decode(
					&mut &value[..],
				)
				.map_err(|e| Error::Decode { what: "System.Account".into(), reason: e.to_string() })?;
				ledger.accounts += 1;
				ledger.free = ledger.free.saturating_add(info.data.free);
				ledger.held = ledger.held.saturating_add(info.data.reserved);
			}
			if keys.len() < 500 {
				return Ok(ledger);
			}
			start = keys.last().cloned();
		}
	}
}

/// Total issuance against what the accounts hold ([`Client::ledger`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ledger {
	/// `Balances.TotalIssuance`.
	pub issuance: Balance,
	/// Accounts in `System.Account`.
	pub accounts: u32,
	/// Sum of free balances.
	pub free: Balance,
	/// Sum of held (reserved) balances: stakes, escrows, deposits.
	pub held: Balance,
}

impl Ledger {
	/// Free plus held over every account.
	pub fn total(&self) -> Balance {
		self.free.saturating_add(self.held)
	}
}
