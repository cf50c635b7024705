//! Random call sequences against the real runtime, decoded from arbitrary bytes: the
//! harness behind the `runtime_calls` fuzz target (`fuzz/`) and the seeded sequences of
//! `tests/call_sequences.rs`.
//!
//! The bytes drive a small interpreter. Each block runs the real hooks through
//! `Executive::initialize_block` / `finalize_block` with a proof-of-work author digest
//! (block rewards are minted) and the timestamp inherent, and between them a few actions:
//! FL calls shaped enough to reach deep states (tasks, bids, honest, lazy, non-finite and
//! garbage blobs, seeds, reports, votes, publications), balance transfers, governance
//! (any runtime parameter set to any value by sudo or by a council motion, difficulty),
//! and raw SCALE-decoded calls from signed origins. After every block:
//! - every BLADE-FL pallet's `do_try_state` (and with the `try-runtime` feature the
//!   `try_state` of every pallet in the runtime);
//! - the ledger: the sum of every account's free and reserved balance is the total issuance;
//! - conservation: the total issuance moved exactly by the block reward minted minus what
//!   was burnt (`Balances` events), and nothing else was minted.
//!
//! Root (the sudo key) only reaches the parameter and difficulty calls governance exists
//! for: a root call such as `System::set_storage` can rewrite anything, and is trusted, so
//! raw calls never go through `Sudo`.
#![allow(dead_code)]

use blade_fl_primitives::{
	blob::{blob_hash, encode_f32, Codec},
	pn::{round_key, seed_commitment, Chips, Seed},
};
use blade_fl_runtime::{
	configs::RuntimeParameters, AccountId, Balance, Executive, Header, Runtime, RuntimeCall,
	RuntimeEvent, RuntimeOrigin, UNIT,
};
use codec::{Decode, DecodeLimit, Encode};
use frame_support::{traits::Get, BoundedVec};
use pallet_fl_tasks::{
	AggregationRule, Phase, PhaseLengths, PrivacyFloor, TaskId, TaskSpec, TrainerMask,
};
use sp_core::H256;
use sp_keyring::Sr25519Keyring as K;
use sp_runtime::{
	traits::{Dispatchable, Hash as _, Header as _},
	BuildStorage, Digest, DigestItem, Perbill, Percent,
};

type Balances = pallet_balances::Pallet<Runtime>;
type System = frame_system::Pallet<Runtime>;
type Tasks = pallet_fl_tasks::Pallet<Runtime>;

/// Blocks one input may run (its actions, then blocks for phases to run out).
const MAX_BLOCKS: u32 = 160;
/// Blocks run after the input's bytes are spent, so deadlines and settlement hooks fire.
const TAIL_BLOCKS: u32 = 40;
/// Actions at most per block.
const MAX_ACTIONS: u8 = 12;

/// The fuzzer's bytes, read front to back; zeros once spent.
pub struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
	/// Over `data`.
	pub fn new(data: &'a [u8]) -> Self {
		Bytes(data)
	}
	fn is_empty(&self) -> bool {
		self.0.is_empty()
	}
	fn take(&mut self, n: usize) -> &'a [u8] {
		let n = n.min(self.0.len());
		let (head, tail) = self.0.split_at(n);
		self.0 = tail;
		head
	}
	fn u8(&mut self) -> u8 {
		self.take(1).first().copied().unwrap_or(0)
	}
	fn u16(&mut self) -> u16 {
		u16::from(self.u8()) | (u16::from(self.u8()) << 8)
	}
	fn u32(&mut self) -> u32 {
		u32::from(self.u16()) | (u32::from(self.u16()) << 16)
	}
	fn u64(&mut self) -> u64 {
		u64::from(self.u32()) | (u64::from(self.u32()) << 32)
	}
	/// True one time in `n`.
	fn one_in(&mut self, n: u8) -> bool {
		self.u8().is_multiple_of(n)
	}
	fn below(&mut self, n: u32) -> u32 {
		if n == 0 {
			0
		} else {
			self.u16() as u32 % n
		}
	}
	fn pick<T: Clone>(&mut self, from: &[T]) -> T {
		from[self.below(from.len() as u32) as usize].clone()
	}
	/// A small or, now and then, a boundary value.
	fn amount(&mut self) -> Balance {
		match self.u8() % 8 {
			0 => 0,
			1 => Balance::MAX,
			2 => u128::from(self.u64()),
			_ => u128::from(self.u16()) * UNIT / 10,
		}
	}
}

/// The accounts that act: the funded development accounts (Alice is the sudo key;
/// Alice, Bob and Charlie the council) and one that holds nothing.
fn accounts() -> Vec<AccountId> {
	let mut all: Vec<AccountId> = [
		K::Alice,
		K::Bob,
		K::Charlie,
		K::Dave,
		K::Eve,
		K::Ferdie,
		K::AliceStash,
		K::BobStash,
	]
	.iter()
	.map(|k| k.to_account_id())
	.collect();
	all.push(AccountId::new([7u8; 32]));
	all
}

fn seed(who: &AccountId, task: TaskId, round: u32) -> Seed {
	blob_hash(&(b"sequence-seed", who, task, round).encode())
}

fn commitment(who: &AccountId, task: TaskId, round: u32) -> H256 {
	H256(seed_commitment(&who.encode(), &seed(who, task, round)))
}

/// What the interpreter remembers across blocks: blobs it sent, so copies and
/// publications can refer to them.
#[derive(Default)]
struct Memory {
	/// (task, round, trainer) -> update blob sent.
	updates: Vec<(TaskId, u32, AccountId, Vec<u8>)>,
	/// Aggregate blobs by hash.
	aggregates: Vec<(H256, Vec<u8>)>,
	/// (task, round, copier, victim) of every copied update sent.
	copies: Vec<(TaskId, u32, AccountId, AccountId)>,
}

/// Pseudo-random values from a key (the "trained" part of an update).
fn values(key: u64, n: usize, scale: f32) -> Vec<f32> {
	let mut state = key | 1;
	(0..n)
		.map(|_| {
			state ^= state << 13;
			state ^= state >> 7;
			state ^= state << 17;
			((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * scale
		})
		.collect()
}

fn task_ids() -> Vec<TaskId> {
	let next = pallet_fl_tasks::NextTaskId::<Runtime>::get();
	(next.saturating_sub(4)..next.saturating_add(1)).collect()
}

std::thread_local! {
	/// Refusals seen in the current run, by `call: error`.
	static REFUSED: std::cell::RefCell<std::collections::BTreeMap<String, u32>> =
		Default::default();
}

fn dispatch(call: RuntimeCall, origin: RuntimeOrigin) {
	use frame_support::traits::GetCallMetadata;
	// Errors are expected; a call that fails must leave no trace (calls are transactional),
	// which the checks after the block see.
	let name = call.get_call_metadata().function_name;
	if let Err(e) = call.dispatch(origin) {
		let error = match e.error {
			sp_runtime::DispatchError::Module(m) => m.message.unwrap_or("?").to_string(),
			other => format!("{other:?}"),
		};
		REFUSED.with(|r| {
			*r.borrow_mut()
				.entry(format!("{name}: {error}"))
				.or_default() += 1
		});
	}
}

fn signed(who: &AccountId) -> RuntimeOrigin {
	RuntimeOrigin::signed(who.clone())
}

fn fl(who: &AccountId, call: pallet_fl_tasks::Call<Runtime>) {
	dispatch(RuntimeCall::FlTasks(call), signed(who));
}

fn spec(b: &mut Bytes) -> pallet_fl_tasks::SpecOf<Runtime> {
	let trainers_wanted = 1 + b.below(8);
	let rule = match b.u8() % 4 {
		0 => AggregationRule::FedAvg,
		1 => AggregationRule::CoordinateMedian,
		2 => AggregationRule::TrimmedMean {
			trim: Percent::from_percent(b.u8() % 60),
		},
		_ => AggregationRule::MultiKrum {
			byzantine: b.u8() % 3,
		},
	};
	let phase = |b: &mut Bytes| 6 + b.below(5);
	let mut spec = TaskSpec {
		model_id: b.u8().into(),
		param_count: 1 + b.below(256),
		dataset_id: b.u8().into(),
		validation_hash: H256::repeat_byte(b.u8()),
		rounds: 1 + b.below(3),
		trainers_wanted,
		trainers_min: 1 + b.below(trainers_wanted),
		min_samples: 1 + u64::from(b.u8()),
		max_samples: 1 + u64::from(b.u16()),
		codec: Codec::F32,
		rule,
		privacy: None,
		pn_snr_centi_db: b.pick(&[300, 600, 900]),
		max_norm_milli: b.pick(&[1_000, 1_000_000, u32::MAX]),
		phases: PhaseLengths {
			bidding: phase(b),
			submit: phase(b),
			reveal: phase(b),
			aggregate: phase(b),
		},
		reward: (1 + u128::from(b.u16())) * UNIT / 4,
		min_stake: b.pick(&[10 * UNIT, 50 * UNIT]),
	};
	// One field in four specs from anywhere in its range (mostly refused).
	match b.u8() % 16 {
		0 => spec.reward = b.amount(),
		1 => spec.min_stake = b.amount(),
		2 => spec.pn_snr_centi_db = b.u32() % 4_000,
		3 => spec.max_norm_milli = b.u32(),
		4 => spec.phases.submit = b.u32() % 16,
		5 => {
			spec.privacy = Some(PrivacyFloor {
				max_epsilon_milli: b.u32() % 20_000,
				delta: Perbill::from_parts(b.u32() % 20_000_000),
			})
		}
		6 => spec.param_count = b.u32(),
		7 => spec.rounds = b.u32() % 200,
		8 => spec.codec = b.pick(&[Codec::F16, Codec::Int8]),
		_ => {}
	}
	spec
}

/// An update blob for `who` in (`task`, `round`): honest with its watermark, a copy of
/// another's, a copy re-watermarked, unmarked, non-finite, or garbage.
fn update(
	b: &mut Bytes,
	memory: &mut Memory,
	who: &AccountId,
	task: TaskId,
	round: u32,
) -> Vec<u8> {
	let Some(info) = pallet_fl_tasks::Tasks::<Runtime>::get(task) else {
		return b.take(64).to_vec();
	};
	let n = info.spec.param_count.min(4096) as usize;
	let previous = Tasks::starting_model_hash(task, &info, round);
	let key = round_key(
		&who.encode(),
		task,
		round,
		&previous.0,
		&seed(who, task, round),
	);
	let watermarked = |mut v: Vec<f32>, strength: f32| {
		for (x, c) in v.iter_mut().zip(Chips::new(&key)) {
			*x += strength * f32::from(c);
		}
		v
	};
	let others: Vec<(AccountId, Vec<u8>)> = memory
		.updates
		.iter()
		.filter(|(t, r, w, _)| *t == task && *r == round && w != who)
		.map(|(_, _, w, blob)| (w.clone(), blob.clone()))
		.collect();
	match b.u8() % 12 {
		0..=5 => encode_f32(task, round, &watermarked(values(b.u64(), n, 0.1), 0.05)),
		6 if !others.is_empty() => {
			let (victim, copied) = b.pick(&others);
			memory.copies.push((task, round, who.clone(), victim));
			copied
		}
		7 if !others.is_empty() => {
			// A copy of another's update with the copier's own watermark on top.
			let (victim, copied) = b.pick(&others);
			memory.copies.push((task, round, who.clone(), victim));
			let floats: Vec<f32> = copied
				.get(blade_fl_primitives::blob::HEADER_LEN..)
				.unwrap_or_default()
				.chunks_exact(4)
				.map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
				.collect();
			encode_f32(task, round, &watermarked(floats, 0.05))
		}
		8 => encode_f32(task, round, &values(b.u64(), n, 0.1)),
		9 => {
			let mut v = values(b.u64(), n, 0.1);
			let at = b.below(n as u32) as usize;
			if let Some(x) = v.get_mut(at) {
				*x = b.pick(&[f32::NAN, f32::INFINITY, f32::NEG_INFINITY, f32::MAX]);
			}
			encode_f32(task, round, &v)
		}
		_ => {
			let len = b.below(512) as usize;
			b.take(len).to_vec()
		}
	}
}

fn blob(
	bytes: Vec<u8>,
) -> BoundedVec<u8, frame_support::traits::ConstU32<{ blade_fl_runtime::configs::MAX_BLOB_LEN }>> {
	let mut bytes = bytes;
	bytes.truncate(blade_fl_runtime::configs::MAX_BLOB_LEN as usize);
	BoundedVec::truncate_from(bytes)
}

/// One action from the bytes: three in four move a live task along its phase (a bid, a
/// trainer's update, seed, vote or publication, each sometimes malformed or dishonest), the
/// rest are any call at all.
fn act(b: &mut Bytes, memory: &mut Memory, people: &[AccountId]) {
	let live: Vec<TaskId> = pallet_fl_tasks::ActiveTasks::<Runtime>::get()
		.iter()
		.map(|a| a.task)
		.collect();
	let task = if live.is_empty() || b.one_in(8) {
		b.pick(&task_ids())
	} else {
		b.pick(&live)
	};
	let info = pallet_fl_tasks::Tasks::<Runtime>::get(task);
	// Mostly one of the task's trainers that still has to act in this phase (the calls that
	// move a round need them), sometimes any trainer, sometimes anyone.
	let waiting: Vec<AccountId> = info
		.as_ref()
		.map(|info| {
			let mask = match info.phase {
				Phase::Submit => info.awaiting_update(),
				Phase::Reveal => info.awaiting_reveal(),
				Phase::Aggregate => info.eligible(),
				_ => info.active(),
			};
			info.trainers
				.iter()
				.enumerate()
				.filter(|(i, who)| {
					mask & (1u64 << i) != 0
						&& !(info.phase == Phase::Aggregate
							&& pallet_fl_tasks::Votes::<Runtime>::contains_key(task, *who))
				})
				.map(|(_, who)| who.clone())
				.collect()
		})
		.unwrap_or_default();
	let who = match (&info, b.u8() % 8) {
		(Some(_), 0..=5) if !waiting.is_empty() => b.pick(&waiting),
		(Some(info), 6) if !info.trainers.is_empty() => b.pick(&info.trainers),
		_ => b.pick(people),
	};
	let round = info
		.as_ref()
		.map(|info| info.round)
		.unwrap_or(0)
		.saturating_add(u32::from(b.one_in(16)));
	let choice = match (&info, b.u8() % 4) {
		(_, 0) => b.u8() % 20,
		(None, _) => 0,
		(Some(info), _) => match info.phase {
			Phase::Bidding => 2,
			Phase::Submit => 7,
			Phase::Reveal if b.one_in(4) => 12,
			Phase::Reveal => 10,
			Phase::Aggregate => 13,
			Phase::Publishing => 15,
			Phase::Failing(_) => b.u8() % 20,
		},
	};
	match choice {
		0 | 1 => {
			let spec = spec(b);
			fl(&who, pallet_fl_tasks::Call::publish_task { spec })
		}
		2..=4 => {
			let (min, max) = info
				.as_ref()
				.map(|i| (i.spec.min_samples, i.spec.max_samples))
				.unwrap_or((1, 1));
			let samples = if b.one_in(8) {
				b.u64()
			} else {
				min.saturating_add(b.u64() % max.saturating_sub(min).saturating_add(1))
			};
			// Mostly someone who may still bid and can pay the stake.
			let stake = info
				.as_ref()
				.map(|i| Tasks::bid_stake(&i.spec, samples))
				.unwrap_or_default();
			let fresh: Vec<AccountId> = people
				.iter()
				.filter(|p| {
					use frame_support::traits::fungible::Inspect;
					info.as_ref().is_some_and(|i| i.publisher != **p)
						&& !pallet_fl_tasks::Bids::<Runtime>::contains_key(task, *p)
						&& Balances::balance(p) > stake.saturating_mul(2)
				})
				.cloned()
				.collect();
			let bidder = if fresh.is_empty() || b.one_in(8) {
				b.pick(people)
			} else {
				b.pick(&fresh)
			};
			fl(
				&bidder,
				pallet_fl_tasks::Call::bid {
					task,
					samples,
					price: b.amount(),
					capability: b.u32(),
					commitment: commitment(&bidder, task, 0),
				},
			)
		}
		5 => fl(&who, pallet_fl_tasks::Call::withdraw_bid { task }),
		6 => fl(&who, pallet_fl_tasks::Call::cancel_task { task }),
		7..=9 => {
			let bytes = update(b, memory, &who, task, round);
			memory
				.updates
				.push((task, round, who.clone(), bytes.clone()));
			fl(
				&who,
				pallet_fl_tasks::Call::submit_update {
					task,
					round,
					blob: blob(bytes),
					next_commitment: commitment(&who, task, round.saturating_add(1)),
				},
			)
		}
		10 | 11 => {
			let s = if b.one_in(8) {
				blob_hash(b.take(8))
			} else {
				seed(&who, task, round)
			};
			fl(
				&who,
				pallet_fl_tasks::Call::reveal_seed {
					task,
					round,
					seed: s,
				},
			)
		}
		12 => {
			// Mostly a copier the interpreter knows of, named with or without its victim.
			let known: Vec<(AccountId, AccountId)> = memory
				.copies
				.iter()
				.filter(|(t, r, _, _)| *t == task && *r == round)
				.map(|(_, _, copier, victim)| (copier.clone(), victim.clone()))
				.collect();
			let (accused, victim) = match b.u8() % 4 {
				0..=2 if !known.is_empty() => {
					let (copier, victim) = b.pick(&known);
					(copier, (b.one_in(2)).then_some(victim))
				}
				_ => (b.pick(people), (b.one_in(2)).then(|| b.pick(people))),
			};
			let sent: Vec<Vec<u8>> = memory
				.updates
				.iter()
				.filter(|(t, r, w, _)| *t == task && *r == round && *w == accused)
				.map(|(_, _, _, blob)| blob.clone())
				.collect();
			let accused_blob = if sent.is_empty() || b.one_in(8) {
				b.take(64).to_vec()
			} else {
				b.pick(&sent)
			};
			let call = if b.one_in(3) {
				pallet_fl_tasks::Call::report_weak_watermark {
					task,
					round,
					accused,
					accused_blob: blob(accused_blob),
				}
			} else {
				pallet_fl_tasks::Call::report_lazy {
					task,
					round,
					accused,
					victim,
					accused_blob: blob(accused_blob),
				}
			};
			fl(&who, call)
		}
		13 | 14 => {
			// An aggregate: one of three candidates per round (so votes can agree), or noise.
			let n = info
				.as_ref()
				.map(|i| i.spec.param_count.min(4096) as usize)
				.unwrap_or(1);
			let bytes = encode_f32(task, round, &values(u64::from(b.u8() % 3), n, 0.01));
			let hash = H256(blob_hash(&bytes));
			memory.aggregates.push((hash, bytes));
			let included: TrainerMask = match b.u8() % 4 {
				0 => b.u64(),
				1 => info.as_ref().map(|i| i.submitted).unwrap_or_default(),
				_ => info
					.as_ref()
					.map(|i| i.revealed & !i.lazy)
					.unwrap_or_default(),
			};
			fl(
				&who,
				pallet_fl_tasks::Call::propose_aggregate {
					task,
					round,
					hash,
					included,
				},
			)
		}
		15 => {
			// The agreed aggregate of the latest round when it is known, else any.
			let agreed = (0..=round).rev().find_map(|r| {
				let model = pallet_fl_tasks::GlobalModels::<Runtime>::get(task, r)?;
				memory
					.aggregates
					.iter()
					.find(|(h, _)| *h == model.hash)
					.map(|(_, blob)| (r, blob.clone()))
			});
			let (round, bytes) = match agreed {
				Some(found) if !b.one_in(8) => found,
				_ if !memory.aggregates.is_empty() => (round, b.pick(&memory.aggregates).1),
				_ => (round, b.take(64).to_vec()),
			};
			let by = if b.one_in(2) { who } else { b.pick(people) };
			fl(
				&by,
				pallet_fl_tasks::Call::publish_aggregate {
					task,
					round,
					blob: blob(bytes),
				},
			)
		}
		16 => {
			let from = b.pick(people);
			let dest = b.pick(people);
			let value = b.amount();
			let call = match b.u8() % 8 {
				0..=3 => pallet_balances::Call::transfer_keep_alive {
					dest: dest.into(),
					value,
				},
				4..=6 => pallet_balances::Call::transfer_allow_death {
					dest: dest.into(),
					value,
				},
				_ => pallet_balances::Call::transfer_all {
					dest: dest.into(),
					keep_alive: b.one_in(2),
				},
			};
			dispatch(RuntimeCall::Balances(call), signed(&from))
		}
		17 => {
			let proposer = b.pick(people);
			governance(b, &proposer, people)
		}
		_ => {
			// Raw bytes as a call from any signed origin, never through `Sudo`.
			let len = b.below(256) as usize;
			let mut raw = b.take(len);
			if let Ok(call) = RuntimeCall::decode_with_depth_limit(8, &mut raw) {
				if !matches!(call, RuntimeCall::Sudo(_)) {
					dispatch(call, signed(&b.pick(people)))
				}
			}
		}
	}
}

/// A governance action: a parameter or the difficulty set by sudo (signed by anyone: only
/// the key succeeds) or through a council motion (proposed, voted, closed).
fn governance(b: &mut Bytes, who: &AccountId, people: &[AccountId]) {
	use blade_fl_runtime::configs::dynamic_params::{fl, pow, rewards};
	let percent = |b: &mut Bytes| Some(Perbill::from_percent(b.below(101)));
	let key_value = match b.u8() % 10 {
		// Any parameter at any value (the council may be hostile or careless).
		0 | 1 => {
			let len = b.below(64) as usize;
			let mut raw = b.take(len);
			match RuntimeParameters::decode(&mut raw) {
				Ok(key_value) => Some(key_value),
				Err(_) => return,
			}
		}
		2 => Some(RuntimeParameters::Rewards(
			rewards::Parameters::BlockReward(rewards::BlockReward, Some(u128::from(b.u8()) * UNIT)),
		)),
		3 => Some(RuntimeParameters::Fl(fl::Parameters::LazySlash(
			fl::LazySlash,
			percent(b),
		))),
		4 => Some(RuntimeParameters::Fl(fl::Parameters::MissSlash(
			fl::MissSlash,
			percent(b),
		))),
		5 => Some(RuntimeParameters::Fl(fl::Parameters::ReporterShare(
			fl::ReporterShare,
			percent(b),
		))),
		6 => Some(RuntimeParameters::Fl(fl::Parameters::Quorum(
			fl::Quorum,
			percent(b),
		))),
		7 => Some(RuntimeParameters::Fl(fl::Parameters::AggregationFee(
			fl::AggregationFee,
			percent(b),
		))),
		8 => Some(RuntimeParameters::Pow(pow::Parameters::TargetBlockTime(
			pow::TargetBlockTime,
			Some(500 + u64::from(b.u16())),
		))),
		_ => None,
	};
	let inner = match key_value {
		Some(key_value) => {
			RuntimeCall::Parameters(pallet_parameters::Call::set_parameter { key_value })
		}
		None => RuntimeCall::Difficulty(pallet_difficulty::Call::set_difficulty {
			difficulty: u128::from(b.u64()),
		}),
	};
	type Council = pallet_collective::Pallet<Runtime, pallet_collective::Instance1>;
	match b.u8() % 4 {
		0 | 1 => dispatch(
			RuntimeCall::Sudo(pallet_sudo::Call::sudo {
				call: Box::new(inner),
			}),
			signed(who),
		),
		_ => {
			let length_bound = inner.encoded_size() as u32;
			let threshold = 1 + b.below(3);
			let hash = <Runtime as frame_system::Config>::Hashing::hash_of(&inner);
			let _ = Council::propose(
				signed(who),
				threshold,
				Box::new(inner.clone()),
				length_bound,
			);
			let Some(index) = pallet_collective::ProposalOf::<Runtime, pallet_collective::Instance1>::contains_key(hash)
				.then(|| pallet_collective::ProposalCount::<Runtime, pallet_collective::Instance1>::get().saturating_sub(1))
			else {
				return;
			};
			for voter in people.iter().take(3) {
				let _ = Council::vote(signed(voter), hash, index, !b.one_in(4));
			}
			let _ = Council::close(
				signed(who),
				hash,
				index,
				frame_support::weights::Weight::MAX,
				length_bound,
			);
		}
	}
}

/// Balances events of a block: (minted, burnt, issuance forced by root).
fn issuance_moves(events: &[RuntimeEvent]) -> (Balance, Balance, bool, Balance) {
	let (mut minted, mut burnt, mut forced, mut rewarded) = (0u128, 0u128, false, 0u128);
	for event in events {
		match event {
			RuntimeEvent::Balances(e) => match e {
				pallet_balances::Event::Minted { amount, .. }
				| pallet_balances::Event::Issued { amount }
				| pallet_balances::Event::MintedCredit { amount } => minted = minted.saturating_add(*amount),
				pallet_balances::Event::Burned { amount, .. }
				| pallet_balances::Event::BurnedHeld { amount, .. }
				| pallet_balances::Event::BurnedDebt { amount }
				| pallet_balances::Event::Rescinded { amount } => burnt = burnt.saturating_add(*amount),
				pallet_balances::Event::TotalIssuanceForced { .. }
				| pallet_balances::Event::BalanceSet { .. } => forced = true,
				_ => {}
			},
			RuntimeEvent::BlockReward(pallet_block_reward::Event::Rewarded { amount, .. }) => {
				rewarded = rewarded.saturating_add(*amount)
			}
			_ => {}
		}
	}
	(minted, burnt, forced, rewarded)
}

/// The checks after every block; `Err` names the broken invariant.
fn check(before: Balance, reward: Balance, block: u32) -> Result<(), String> {
	let at = |what: &str| format!("block {block}: {what}");
	Tasks::do_try_state().map_err(|e| at(&format!("fl-tasks try_state: {e:?}")))?;
	pallet_fl_reputation::Pallet::<Runtime>::do_try_state()
		.map_err(|e| at(&format!("reputation try_state: {e:?}")))?;
	pallet_difficulty::Pallet::<Runtime>::do_try_state()
		.map_err(|e| at(&format!("difficulty try_state: {e:?}")))?;
	pallet_block_reward::Pallet::<Runtime>::do_try_state()
		.map_err(|e| at(&format!("block-reward try_state: {e:?}")))?;
	#[cfg(feature = "try-runtime")]
	{
		use frame_support::traits::TryState;
		blade_fl_runtime::AllPalletsWithSystem::try_state(
			block,
			frame_support::traits::TryStateSelect::All,
		)
		.map_err(|e| at(&format!("runtime try_state: {e:?}")))?;
	}
	let issuance = Balances::total_issuance();
	let ledger = frame_system::Account::<Runtime>::iter_values().fold(0u128, |sum, a| {
		sum.saturating_add(a.data.free)
			.saturating_add(a.data.reserved)
	});
	if ledger != issuance {
		return Err(at(&format!(
			"accounts hold {ledger}, total issuance is {issuance}"
		)));
	}
	let events: Vec<RuntimeEvent> = System::events().into_iter().map(|r| r.event).collect();
	let (minted, burnt, forced, rewarded) = issuance_moves(&events);
	if !forced {
		if minted != rewarded {
			return Err(at(&format!(
				"{minted} minted but {rewarded} paid as block reward"
			)));
		}
		let expected = before.saturating_add(minted).checked_sub(burnt);
		if expected != Some(issuance) {
			return Err(at(&format!(
				"issuance {before} -> {issuance}, but minted {minted} and burnt {burnt}"
			)));
		}
	}
	// `reward` is the parameter when the block began: the hook pays it first, and
	// governance may change it later in the same block.
	if rewarded > reward {
		return Err(at(&format!(
			"{rewarded} paid as block reward, reward is {reward}"
		)));
	}
	Ok(())
}

/// Genesis storage of the development preset (built once, cloned per input).
pub fn genesis() -> sp_runtime::Storage {
	let config = blade_fl_runtime::genesis_config_presets::preset_config(&"development".into())
		.expect("development preset");
	config.build_storage().expect("genesis builds")
}

/// What a run reached: blocks run and the events seen (`Pallet::Variant` -> count).
#[derive(Default)]
pub struct Reached {
	/// Blocks run.
	pub blocks: u32,
	/// Events by `Pallet(Variant` name.
	pub events: std::collections::BTreeMap<String, u32>,
	/// Refused calls by `call: error`.
	pub refused: std::collections::BTreeMap<String, u32>,
}

fn event_name(event: &RuntimeEvent) -> String {
	let text = format!("{event:?}");
	let end = text.find([' ', '{']).unwrap_or(text.len());
	text[..end].trim_end_matches('(').to_string()
}

/// Run the sequence `data` describes on `genesis`; `Err` names the first broken invariant.
pub fn run(genesis: &sp_runtime::Storage, data: &[u8]) -> Result<Reached, String> {
	let mut ext = sp_io::TestExternalities::new(genesis.clone());
	ext.execute_with(|| {
		let people = accounts();
		let mut b = Bytes::new(data);
		let mut memory = Memory::default();
		let mut parent = System::parent_hash();
		let mut now_ms: u64 = 1_700_000_000_000;
		let mut tail = 0;
		let mut reached = Reached::default();
		REFUSED.with(|r| r.borrow_mut().clear());
		while reached.blocks < MAX_BLOCKS && tail < TAIL_BLOCKS {
			if b.is_empty() {
				// Blocks for deadlines and settlement to fire, while any task is live.
				if tail > 0 && pallet_fl_tasks::ActiveTasks::<Runtime>::get().is_empty() {
					break;
				}
				tail += 1;
			}
			let number = System::block_number() + 1;
			let author = b.pick(&people);
			let digest = Digest {
				logs: vec![DigestItem::PreRuntime(
					sp_consensus_pow::POW_ENGINE_ID,
					author.encode(),
				)],
			};
			let header = Header::new(number, H256::zero(), H256::zero(), parent, digest);
			let before = Balances::total_issuance();
			let reward: Balance =
				blade_fl_runtime::configs::dynamic_params::rewards::BlockReward::get();
			Executive::initialize_block(&header);
			now_ms += 1_000 + u64::from(b.u16());
			dispatch(
				RuntimeCall::Timestamp(pallet_timestamp::Call::set { now: now_ms }),
				RuntimeOrigin::none(),
			);
			for _ in 0..(b.u8() % (MAX_ACTIONS + 1)) {
				if b.is_empty() {
					break;
				}
				act(&mut b, &mut memory, &people);
			}
			let header = Executive::finalize_block();
			check(before, reward, number)?;
			for record in System::events() {
				*reached.events.entry(event_name(&record.event)).or_default() += 1;
			}
			parent = header.hash();
			reached.blocks += 1;
		}
		reached.refused = REFUSED.with(|r| std::mem::take(&mut *r.borrow_mut()));
		Ok(reached)
	})
}
