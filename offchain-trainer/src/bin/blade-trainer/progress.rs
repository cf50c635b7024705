//! Progress spinners drawn from the library's progress events: the runner only emits
//! `TRACE` events of target [`PROGRESS_TARGET`] (fields `task`, `message`); this layer
//! turns them into one spinner per task on stderr once [`enable`] is called.

use std::{
	collections::HashMap,
	sync::{
		atomic::{AtomicBool, Ordering},
		Mutex, OnceLock,
	},
	time::Duration,
};

use blade_trainer::runner::PROGRESS_TARGET;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use tracing::{field::Field, Event, Subscriber};
use tracing_subscriber::{
	filter::filter_fn,
	layer::{Context, Filter},
	Layer,
};

static ENABLED: AtomicBool = AtomicBool::new(false);

fn bars() -> &'static Mutex<(MultiProgress, HashMap<u64, ProgressBar>)> {
	static BARS: OnceLock<Mutex<(MultiProgress, HashMap<u64, ProgressBar>)>> = OnceLock::new();
	BARS.get_or_init(|| Mutex::new((MultiProgress::new(), HashMap::new())))
}

/// Draw spinners from now on.
pub fn enable() {
	ENABLED.store(true, Ordering::Relaxed);
}

/// Clear every spinner and stop drawing.
pub fn finish() {
	ENABLED.store(false, Ordering::Relaxed);
	let mut guard = bars().lock().unwrap_or_else(|p| p.into_inner());
	for (_, bar) in guard.1.drain() {
		bar.finish_and_clear();
	}
}

/// The layer, filtered to progress events only.
pub fn layer<S>() -> impl Layer<S>
where
	S: Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
	ProgressLayer.with_filter(progress_events())
}

fn progress_events<S: Subscriber>() -> impl Filter<S> {
	filter_fn(|meta| meta.target() == PROGRESS_TARGET)
}

struct ProgressLayer;

#[derive(Default)]
struct Fields {
	task: Option<u64>,
	message: String,
}

impl tracing::field::Visit for Fields {
	fn record_u64(&mut self, field: &Field, value: u64) {
		if field.name() == "task" {
			self.task = Some(value);
		}
	}

	fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
		if field.name() == "message" {
			self.message = format!("{value:?}");
		}
	}
}

impl<S: Subscriber> Layer<S> for ProgressLayer {
	fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
		if !ENABLED.load(Ordering::Relaxed) {
			return;
		}
		let mut fields = Fields::default();
		event.record(&mut fields);
		let Some(task) = fields.task else { return };
		let mut guard = bars().lock().unwrap_or_else(|p| p.into_inner());
		let (multi, map) = &mut *guard;
		let bar = map.entry(task).or_insert_with(|| {
			let bar = multi.add(ProgressBar::new_spinner());
			if let Ok(style) =
				ProgressStyle::with_template("{spinner} task {prefix} {wide_msg} [{elapsed}]")
			{
				bar.set_style(style);
			}
			bar.set_prefix(task.to_string());
			bar.enable_steady_tick(Duration::from_millis(200));
			bar
		});
		bar.set_message(fields.message);
	}
}
