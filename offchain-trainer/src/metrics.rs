//! Prometheus metrics of a trainer process (`blade-trainer serve --metrics ADDR`).
//!
//! One process-wide set, updated by the runner and the chain client wherever the event
//! happens, and served as Prometheus text on `GET /metrics` by [`serve`].

use std::{net::SocketAddr, sync::OnceLock};

use prometheus::{
	core::Collector, Encoder, Gauge, GaugeVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
	TextEncoder,
};

use crate::{error::Result, http};

/// The trainer's metrics.
pub struct Metrics {
	registry: Registry,
	/// Tasks bid on, by the service's decision.
	pub bids: IntCounter,
	/// Tasks the service skipped, by reason.
	pub skipped: IntCounterVec,
	/// Tasks being served now.
	pub tasks_active: IntGauge,
	/// Tasks followed to settlement.
	pub tasks_served: IntCounter,
	/// Rounds this trainer trained and submitted an update for.
	pub updates_sent: IntCounter,
	/// Seconds spent in local training.
	pub training_seconds: Gauge,
	/// Lazy reports sent, by the chain's verdict (`upheld`, `refused`).
	pub lazy_reports: IntCounterVec,
	/// Aggregates this trainer published.
	pub aggregates_published: IntCounter,
	/// Change of the free balance over each served task, BLADE (rewards, fees, slashes).
	pub balance_change: GaugeVec,
	/// Privacy spent per task (epsilon at the task's delta).
	pub privacy_epsilon: GaugeVec,
	/// JSON-RPC calls to the node, by method.
	pub rpc_calls: IntCounterVec,
	/// JSON-RPC calls that failed after retries.
	pub rpc_errors: IntCounter,
	/// Confirmed head this process last acted on.
	pub head: IntGauge,
	/// CPU seconds used by the process (set at each scrape).
	pub cpu: Gauge,
}

fn build() -> std::result::Result<Metrics, prometheus::Error> {
	let registry = Registry::new_custom(Some("blade_trainer".into()), None)?;
	let counter = |name: &str, help: &str| -> std::result::Result<IntCounter, prometheus::Error> {
		let c = IntCounter::new(name, help)?;
		registry.register(Box::new(c.clone()))?;
		Ok(c)
	};
	let counter_vec = |name: &str, help: &str, label: &str| {
		let c = IntCounterVec::new(Opts::new(name, help), &[label])?;
		registry.register(Box::new(c.clone()))?;
		Ok::<_, prometheus::Error>(c)
	};
	let gauge_vec = |name: &str, help: &str, label: &str| {
		let g = GaugeVec::new(Opts::new(name, help), &[label])?;
		registry.register(Box::new(g.clone()))?;
		Ok::<_, prometheus::Error>(g)
	};
	let tasks_active = IntGauge::new("tasks_active", "Tasks being served now")?;
	registry.register(Box::new(tasks_active.clone()))?;
	let head = IntGauge::new("confirmed_head", "Confirmed head last acted on")?;
	registry.register(Box::new(head.clone()))?;
	let training_seconds = Gauge::new("training_seconds_total", "Seconds spent in local training")?;
	registry.register(Box::new(training_seconds.clone()))?;
	Ok(Metrics {
		bids: counter("bids_total", "Tasks bid on")?,
		skipped: counter_vec(
			"tasks_skipped_total",
			"Tasks not bid on, by reason",
			"reason",
		)?,
		tasks_active,
		tasks_served: counter("tasks_served_total", "Tasks followed to settlement")?,
		updates_sent: counter("updates_sent_total", "Updates trained and submitted")?,
		training_seconds,
		lazy_reports: counter_vec(
			"lazy_reports_total",
			"Lazy reports sent, by verdict",
			"verdict",
		)?,
		aggregates_published: counter(
			"aggregates_published_total",
			"Aggregates published by this trainer",
		)?,
		balance_change: gauge_vec(
			"balance_change_blade",
			"Free balance change over a served task (BLADE)",
			"task",
		)?,
		privacy_epsilon: gauge_vec(
			"privacy_epsilon",
			"Privacy spent in a task (epsilon at the task's delta)",
			"task",
		)?,
		rpc_calls: counter_vec("rpc_calls_total", "JSON-RPC calls to the node", "method")?,
		rpc_errors: counter(
			"rpc_errors_total",
			"JSON-RPC calls that failed after retries",
		)?,
		head,
		cpu: {
			let g = Gauge::new("cpu_seconds", "CPU seconds used by the trainer process")?;
			registry.register(Box::new(g.clone()))?;
			g
		},
		registry,
	})
}

/// The process's metrics.
pub fn get() -> &'static Metrics {
	static METRICS: OnceLock<Metrics> = OnceLock::new();
	#[allow(clippy::expect_used)]
	METRICS.get_or_init(|| build().expect("metric names are valid and registered once"))
}

impl Metrics {
	/// JSON-RPC calls made so far, all methods together.
	pub fn rpc_calls_total(&self) -> u64 {
		self.rpc_calls
			.collect()
			.iter()
			.flat_map(|family| family.get_metric())
			.map(|m| m.get_counter().get_value() as u64)
			.sum()
	}

	/// The metrics in Prometheus text format.
	pub fn text(&self) -> String {
		if let Some(cpu) = cpu_seconds() {
			self.cpu.set(cpu);
		}
		let mut out = Vec::new();
		// Encoding into a Vec cannot fail for well-formed metrics.
		let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
		String::from_utf8_lossy(&out).into_owned()
	}
}

/// CPU time this process has used (user + system, all threads), from `/proc/self/stat`;
/// `None` where there is no procfs. Linux reports it in `USER_HZ` ticks, 100 per second
/// on every mainstream configuration.
pub fn cpu_seconds() -> Option<f64> {
	let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
	// Fields after the command name (which may contain spaces) start at field 3.
	let rest = &stat[stat.rfind(')')? + 2..];
	let fields: Vec<&str> = rest.split_whitespace().collect();
	let utime: f64 = fields.get(11)?.parse().ok()?;
	let stime: f64 = fields.get(12)?.parse().ok()?;
	Some((utime + stime) / 100.0)
}

/// Serve the metrics on `addr` (`GET /metrics`, any other path: 404) from a background
/// thread; returns the bound address (pass port 0 for any free port).
pub fn serve(addr: SocketAddr) -> Result<SocketAddr> {
	let bound = http::serve(addr, "metrics", |path| {
		if path == "/metrics" {
			http::Response::ok("text/plain; version=0.0.4", get().text())
		} else {
			http::Response::not_found("try /metrics")
		}
	})?;
	tracing::info!(%bound, "serving metrics on http://{bound}/metrics");
	Ok(bound)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
	use super::*;
	use std::io::{Read, Write};

	#[test]
	fn metrics_are_served_as_prometheus_text_and_move() {
		let addr = serve("127.0.0.1:0".parse().unwrap()).unwrap();
		let scrape = |path: &str| {
			let mut s = std::net::TcpStream::connect(addr).unwrap();
			write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
			let mut text = String::new();
			s.read_to_string(&mut text).unwrap();
			text
		};
		let value = |text: &str, name: &str| -> f64 {
			text.lines()
				.find(|l| l.starts_with(name))
				.and_then(|l| l.rsplit(' ').next()?.parse().ok())
				.unwrap_or(0.0)
		};
		let before = scrape("/metrics");
		assert!(before.starts_with("HTTP/1.1 200 OK"), "{before}");
		get().updates_sent.inc();
		get().lazy_reports.with_label_values(&["upheld"]).inc();
		let after = scrape("/metrics");
		assert_eq!(
			value(&after, "blade_trainer_updates_sent_total"),
			value(&before, "blade_trainer_updates_sent_total") + 1.0
		);
		assert!(after.contains("blade_trainer_lazy_reports_total{verdict=\"upheld\"}"));
		assert!(scrape("/other").starts_with("HTTP/1.1 404"));
	}
}
