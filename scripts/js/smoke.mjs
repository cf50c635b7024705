// polkadot-js client check of a running BLADE-FL node, as a wallet user would connect.
// Usage: node smoke.mjs ws://127.0.0.1:9944
// Prints one JSON line with what it saw; exits non-zero on any failed expectation.
import { ApiPromise, WsProvider, Keyring } from '@polkadot/api';
import { u8aConcat, stringToU8a } from '@polkadot/util';
import { blake2AsHex } from '@polkadot/util-crypto';

const url = process.argv[2] ?? 'ws://127.0.0.1:9944';
const fail = (msg) => { console.error(`FAIL: ${msg}`); process.exit(1); };

const api = await ApiPromise.create({ provider: new WsProvider(url), noInitWarn: true, throwOnConnect: true });
const keyring = new Keyring({ type: 'sr25519', ss58Format: api.registry.chainSS58 });
const alice = keyring.addFromUri('//Alice');
const bob = keyring.addFromUri('//Bob');

// Metadata: our pallets and their calls/events decode from metadata alone.
const pallets = api.runtimeMetadata.asLatest.pallets.map((p) => p.name.toString());
for (const name of ['System', 'Balances', 'Difficulty', 'BlockReward', 'Council', 'Parameters', 'Sudo', 'FlTasks', 'Reputation']) {
  if (!pallets.includes(name)) fail(`pallet ${name} missing from metadata: ${pallets}`);
}
if (typeof api.tx.difficulty?.setDifficulty !== 'function') fail('difficulty.setDifficulty not in metadata');
if (typeof api.tx.parameters?.setParameter !== 'function') fail('parameters.setParameter not in metadata');
for (const call of ['publishTask', 'cancelTask', 'bid', 'withdrawBid', 'submitUpdate', 'revealSeed', 'reportLazy', 'proposeAggregate', 'publishAggregate', 'reportWeakWatermark']) {
  if (typeof api.tx.flTasks?.[call] !== 'function') fail(`flTasks.${call} not in metadata`);
}

// Chain properties: wallets show BLADE with 12 decimals.
const props = await api.rpc.system.properties();
const symbol = props.tokenSymbol.unwrap()[0].toString();
const decimals = props.tokenDecimals.unwrap()[0].toNumber();
if (symbol !== 'BLADE' || decimals !== 12) fail(`properties ${symbol}/${decimals}`);

// Wait for 3 blocks, then derive each block's author from its `pow_` digest.
const waitFor = (n) => new Promise((resolve) => {
  const check = async () => {
    const best = (await api.rpc.chain.getHeader()).number.toNumber();
    if (best >= n) resolve(best); else setTimeout(check, 300);
  };
  check();
});
await waitFor(3);
const authors = [];
for (let n = 1; n <= 3; n++) {
  const hash = await api.rpc.chain.getBlockHash(n);
  const header = await api.derive.chain.getHeader(hash);
  const author = header.author?.toString();
  if (author !== alice.address) fail(`block ${n} author ${author}, expected Alice ${alice.address}`);
  authors.push(author);
}

// Reward visible as a decoded event.
const hash3 = await api.rpc.chain.getBlockHash(3);
const events3 = await (await api.at(hash3)).query.system.events();
const rewarded = events3.find(({ event }) => api.events.blockReward.Rewarded.is(event));
if (!rewarded) fail('no blockReward.Rewarded event in block 3');

// A transfer signed here, watched until it is in a block.
const dest = keyring.addFromUri('//BladeJsClient').address;
const amount = 1_000_000_000_000n;
const included = await new Promise((resolve, reject) => {
  let unsub;
  api.tx.balances.transferKeepAlive(dest, amount)
    .signAndSend(bob, ({ status, events, dispatchError }) => {
      if (dispatchError) { reject(new Error(dispatchError.toString())); return; }
      if (status.isInBlock) {
        const ok = events.some(({ event }) => api.events.balances.Transfer.is(event));
        unsub?.();
        resolve({ block: status.asInBlock.toHex(), ok });
      }
    })
    .then((u) => { unsub = u; }, reject);
});
if (!included.ok) fail('no balances.Transfer event');
const { data } = await api.query.system.account(dest);
if (data.free.toBigInt() !== amount) fail(`destination holds ${data.free}`);

// A federated-learning task published from polkadot-js, as a user would in apps
// (Developer -> Extrinsics -> flTasks.publishTask), read back through storage and the
// FlTasksApi runtime API declared in the metadata.
const spec = {
  modelId: 1, paramCount: 1000, datasetId: 1, validationHash: '0x' + '11'.repeat(32),
  rounds: 2, trainersWanted: 3, trainersMin: 2, minSamples: 10, maxSamples: 1000, codec: 'F32',
  rule: { TrimmedMean: { trim: 10 } }, privacy: { maxEpsilonMilli: 3000, delta: 10000 }, pnSnrCentiDb: 600, maxNormMilli: 100000,
  phases: { bidding: 100, submit: 20, reveal: 20, aggregate: 20 },
  reward: 100_000_000_000_000n, minStake: 10_000_000_000_000n,
};
const published = await new Promise((resolve, reject) => {
  let unsub;
  api.tx.flTasks.publishTask(spec)
    .signAndSend(alice, ({ status, events, dispatchError }) => {
      if (dispatchError) { reject(new Error(dispatchError.toString())); return; }
      if (status.isInBlock) {
        const ev = events.find(({ event }) => api.events.flTasks.TaskPublished.is(event));
        unsub?.();
        resolve(ev ? ev.event.data.task.toNumber() : null);
      }
    })
    .then((u) => { unsub = u; }, reject);
});
if (published === null) fail('no flTasks.TaskPublished event');
const stored = (await api.query.flTasks.tasks(published)).unwrap();
if (stored.spec.rule.isTrimmedMean !== true || stored.phase.isBidding !== true) fail(`task decoded as ${stored.toString()}`);
if (typeof api.call.flTasksApi?.activeTasks !== 'function') fail('FlTasksApi missing from metadata');
const active = (await api.call.flTasksApi.activeTasks()).map((a) => a.task.toNumber());
if (!active.includes(published)) fail(`active tasks ${active}`);
const view = (await api.call.flTasksApi.task(published)).unwrap();
if (view.publisher.toString() !== alice.address) fail(`task view ${view.toString()}`);

// A bid made from polkadot-js alone: the commitment comes from the runtime API
// (Developer -> Runtime calls -> flTasksApi.seedCommitment), checked against the
// documented formula, then Bob bids with it and the bid reads back by field name.
const seed = new Uint8Array(32).fill(7);
const commitment = (await api.call.flTasksApi.seedCommitment(bob.address, seed)).toHex();
const expected = blake2AsHex(u8aConcat(stringToU8a('blade-fl/commit1'), bob.publicKey, seed), 256);
if (commitment !== expected) fail(`seedCommitment ${commitment}, formula ${expected}`);
await new Promise((resolve, reject) => {
  let unsub;
  api.tx.flTasks.bid(published, 100, 1_000_000_000_000n, 1, commitment)
    .signAndSend(bob, ({ status, dispatchError }) => {
      if (dispatchError) { reject(new Error(dispatchError.toString())); return; }
      if (status.isInBlock) { unsub?.(); resolve(); }
    })
    .then((u) => { unsub = u; }, reject);
});
const bids = await api.call.flTasksApi.bids(published);
const bobBid = bids.find((b) => b.bidder.toString() === bob.address);
if (!bobBid || bobBid.bid.commitment.toHex() !== commitment) fail(`bids ${bids.toString()}`);

console.log(JSON.stringify({ ok: true, pallets: pallets.length, symbol, decimals, authors, transferBlock: included.block, flTask: published, activeTasks: active, bidCommitment: commitment }));
await api.disconnect();
process.exit(0);
