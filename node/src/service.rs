//! Service assembly: client, proof-of-work import queue, network, RPC and the miner.

use std::{
	sync::{atomic::AtomicBool, Arc},
	time::Duration,
};

use blade_fl_runtime::{apis::RuntimeApi, opaque::Block, AccountId};
use blade_pow::BladePow;
use codec::Encode;
use futures::FutureExt;
use sc_client_api::Backend;
use sc_consensus::BoxBlockImport;
use sc_service::{error::Error as ServiceError, Configuration, TaskManager};
use sc_telemetry::{Telemetry, TelemetryWorker};
use sc_transaction_pool_api::OffchainTransactionPoolFactory;

use crate::mining::{self, StopOnDrop};

/// The full client: wasm-only executor (no native runtime).
pub type FullClient = sc_service::TFullClient<
	Block,
	RuntimeApi,
	sc_executor::WasmExecutor<sp_io::SubstrateHostFunctions>,
>;
type FullBackend = sc_service::TFullBackend<Block>;
type FullSelectChain = sc_consensus::LongestChain<FullBackend, Block>;
/// The PoW algorithm bound to the full client.
pub type Pow = BladePow<Block, FullClient>;

/// Components shared by the node and the maintenance subcommands.
pub type Service = sc_service::PartialComponents<
	FullClient,
	FullBackend,
	FullSelectChain,
	sc_consensus::DefaultImportQueue<Block>,
	sc_transaction_pool::TransactionPoolHandle<Block, FullClient>,
	(BoxBlockImport<Block>, Option<Telemetry>),
>;

/// How the node mines, resolved from the CLI.
#[derive(Clone, Debug)]
pub struct MiningConfig {
	/// Account written into each mined block's `pow_` pre-runtime digest.
	pub author: AccountId,
	/// Number of nonce-search threads.
	pub threads: usize,
}

/// Timestamp inherent: the only inherent of a PoW block. Import checks it too, so a block
/// dated more than 30 s in the future is rejected (and retried once it is no longer early).
async fn timestamp_inherent(
) -> Result<sp_timestamp::InherentDataProvider, Box<dyn std::error::Error + Send + Sync>> {
	Ok(sp_timestamp::InherentDataProvider::from_system_time())
}

/// Client, database, import queue and transaction pool.
pub fn new_partial(config: &Configuration) -> Result<Service, ServiceError> {
	let telemetry = config
		.telemetry_endpoints
		.clone()
		.filter(|x| !x.is_empty())
		.map(|endpoints| -> Result<_, sc_telemetry::Error> {
			let worker = TelemetryWorker::new(16)?;
			let telemetry = worker.handle().new_telemetry(endpoints);
			Ok((worker, telemetry))
		})
		.transpose()?;

	let executor = sc_service::new_wasm_executor::<sp_io::SubstrateHostFunctions>(&config.executor);
	let (client, backend, keystore_container, task_manager) =
		sc_service::new_full_parts::<Block, RuntimeApi, _>(
			config,
			telemetry.as_ref().map(|(_, telemetry)| telemetry.handle()),
			executor,
			Vec::new(),
		)?;
	let client = Arc::new(client);

	let telemetry = telemetry.map(|(worker, telemetry)| {
		task_manager
			.spawn_handle()
			.spawn("telemetry", None, worker.run());
		telemetry
	});

	let select_chain = sc_consensus::LongestChain::new(backend.clone());

	let transaction_pool = Arc::from(
		sc_transaction_pool::Builder::new(
			task_manager.spawn_essential_handle(),
			client.clone(),
			config.role.is_authority().into(),
		)
		.with_options(config.transaction_pool.clone())
		.with_prometheus(config.prometheus_registry())
		.build(),
	);

	let pow_block_import = sc_consensus_pow::PowBlockImport::new(
		client.clone(),
		client.clone(),
		Pow::new(client.clone()),
		0,
		select_chain.clone(),
		|_parent, ()| timestamp_inherent(),
	);

	let import_queue = sc_consensus_pow::import_queue(
		Box::new(pow_block_import.clone()),
		None,
		Pow::new(client.clone()),
		&task_manager.spawn_essential_handle(),
		config.prometheus_registry(),
	)?;

	Ok(sc_service::PartialComponents {
		client,
		backend,
		task_manager,
		import_queue,
		keystore_container,
		select_chain,
		transaction_pool,
		other: (Box::new(pow_block_import), telemetry),
	})
}

/// Build and start a full node; mine when `mining` is set.
pub fn new_full<
	N: sc_network::NetworkBackend<Block, <Block as sp_runtime::traits::Block>::Hash>,
>(
	config: Configuration,
	mining: Option<MiningConfig>,
) -> Result<TaskManager, ServiceError> {
	let sc_service::PartialComponents {
		client,
		backend,
		mut task_manager,
		import_queue,
		keystore_container,
		select_chain,
		transaction_pool,
		other: (block_import, mut telemetry),
	} = new_partial(&config)?;

	let net_config = sc_network::config::FullNetworkConfiguration::<
		Block,
		<Block as sp_runtime::traits::Block>::Hash,
		N,
	>::new(&config.network, config.prometheus_registry().cloned());
	let metrics = N::register_notification_metrics(config.prometheus_registry());

	let (network, system_rpc_tx, tx_handler_controller, sync_service, _bitswap) =
		sc_service::build_network(sc_service::BuildNetworkParams {
			config: &config,
			net_config,
			client: client.clone(),
			transaction_pool: transaction_pool.clone(),
			spawn_handle: task_manager.spawn_handle(),
			spawn_essential_handle: task_manager.spawn_essential_handle(),
			import_queue,
			block_announce_validator_builder: None,
			warp_sync_config: None,
			block_relay: None,
			metrics,
			gap_sync_body_policy: None,
		})?;

	if config.offchain_worker.enabled {
		let offchain_workers =
			sc_offchain::OffchainWorkers::new(sc_offchain::OffchainWorkerOptions {
				runtime_api_provider: client.clone(),
				is_validator: config.role.is_authority(),
				keystore: Some(keystore_container.keystore()),
				offchain_db: backend.offchain_storage(),
				transaction_pool: Some(OffchainTransactionPoolFactory::new(
					transaction_pool.clone(),
				)),
				network_provider: Arc::new(network.clone()),
				enable_http_requests: true,
				custom_extensions: |_| vec![],
			})?;
		task_manager.spawn_handle().spawn(
			"offchain-workers-runner",
			"offchain-worker",
			offchain_workers
				.run(client.clone(), task_manager.spawn_handle())
				.boxed(),
		);
	}

	let prometheus_registry = config.prometheus_registry().cloned();

	let rpc_extensions_builder = {
		let client = client.clone();
		let pool = transaction_pool.clone();
		Box::new(move |_| {
			let deps = crate::rpc::FullDeps {
				client: client.clone(),
				pool: pool.clone(),
			};
			crate::rpc::create_full(deps).map_err(Into::into)
		})
	};

	let _rpc_handlers = sc_service::spawn_tasks(sc_service::SpawnTasksParams {
		network: Arc::new(network.clone()),
		client: client.clone(),
		keystore: keystore_container.keystore(),
		task_manager: &mut task_manager,
		transaction_pool: transaction_pool.clone(),
		rpc_builder: rpc_extensions_builder,
		backend,
		system_rpc_tx,
		tx_handler_controller,
		sync_service: sync_service.clone(),
		config,
		telemetry: telemetry.as_mut(),
		tracing_execute_block: None,
	})?;

	if let Some(mining) = mining {
		let proposer_factory = sc_basic_authorship::ProposerFactory::new(
			task_manager.spawn_handle(),
			client.clone(),
			transaction_pool.clone(),
			prometheus_registry.as_ref(),
			telemetry.as_ref().map(|x| x.handle()),
		);

		let (handle, worker_task) = sc_consensus_pow::start_mining_worker(
			block_import,
			client.clone(),
			select_chain,
			Pow::new(client.clone()),
			proposer_factory,
			sync_service.clone(),
			sync_service.clone(),
			Some(mining.author.encode()),
			|_parent, ()| timestamp_inherent(),
			// Rebuild the proposal at least this often (new transactions, fresh timestamp).
			Duration::from_secs(2),
			// Time allowed to build one proposal.
			Duration::from_secs(1),
		);
		task_manager
			.spawn_essential_handle()
			.spawn("pow-mining-worker", Some("pow"), worker_task);

		let stop = Arc::new(AtomicBool::new(false));
		let hashes = match prometheus_registry.as_ref().map(mining::hash_counter) {
			Some(Ok(counter)) => Some(counter),
			Some(Err(e)) => {
				log::warn!(target: "blade-pow", "hash-rate metric not registered: {e}");
				None
			}
			None => None,
		};
		mining::start_threads(handle, mining.threads, stop.clone(), hashes)
			.map_err(|e| ServiceError::Other(format!("cannot start mining threads: {e}")))?;
		// Dropped with the task manager on shutdown, which stops the mining threads.
		let guard = StopOnDrop(stop);
		task_manager
			.spawn_handle()
			.spawn("pow-miner-guard", Some("pow"), async move {
				let _guard = guard;
				futures::future::pending::<()>().await
			});
		log::info!(
			target: "blade-pow",
			"mining as {} with {} thread(s)",
			sp_core::crypto::Ss58Codec::to_ss58check(&mining.author),
			mining.threads
		);
	}

	Ok(task_manager)
}
