//! A trainer's privacy plan for one task: the task's floor and the trainer's own wishes
//! become one budget, and the noise of every round is calibrated to it before the trainer
//! bids. Where no plan fits, the trainer refuses the task ([`Refusal`]).

use std::fmt;

use super::{plan_dp_sgd, plan_output, Budget, Plan, Schedule};

/// How the trainer protects its data.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Method {
	/// DP-SGD (record-level): `steps` Poisson-sampled steps per round at rate `sample_rate`.
	DpSgd {
		/// Sampling rate `q`.
		sample_rate: f64,
		/// Steps per round.
		steps: u64,
	},
	/// Output perturbation with Gaussian noise (user-level).
	Gaussian,
	/// Output perturbation with Laplace noise (user-level, pure DP).
	Laplace,
	/// No noise.
	Off,
}

/// What the trainer's operator asked for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Wishes {
	/// The trainer's own total epsilon over a task (used when below the task's floor, or
	/// when the task sets none).
	pub epsilon: Option<f64>,
	/// The trainer's delta (the smaller of it and the task's is used).
	pub delta: f64,
	/// A noise multiplier fixed by the operator instead of calibrated (every round).
	pub noise_multiplier: Option<f64>,
	/// Noise over the rounds.
	pub schedule: Schedule,
}

/// The plan a trainer follows in a task.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskPlan {
	/// The budget the plan spends at most.
	pub budget: Budget,
	/// The method.
	pub method: Method,
	/// Per round: noise multiplier (DP-SGD, Gaussian) or epsilon (Laplace), and the total.
	pub plan: Plan,
}

/// Why a trainer refuses a task for privacy.
#[derive(Clone, Debug, PartialEq)]
pub enum Refusal {
	/// The task demands privacy and this trainer is configured without noise.
	NoNoise {
		/// The task's epsilon.
		floor: f64,
	},
	/// The operator's fixed noise multiplier would spend more than the budget.
	WouldExceed {
		/// What the fixed noise would spend over the task.
		spends: f64,
		/// The budget's epsilon.
		budget: f64,
		/// At delta.
		delta: f64,
	},
	/// Neither the task nor the trainer sets a budget, and the trainer was not told to go
	/// without noise: it does not publish unprotected updates by default.
	NoBudget,
	/// No plan exists (for example a budget too small for any calibrated noise).
	Impossible(String),
}

impl fmt::Display for Refusal {
	fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
		match self {
			Refusal::NoNoise { floor } => write!(
				f,
				"the task demands total epsilon <= {floor} per trainer and this trainer adds no noise (--noise off)"
			),
			Refusal::WouldExceed {
				spends,
				budget,
				delta,
			} => write!(
				f,
				"the fixed noise multiplier would spend epsilon {spends:.3} over the task, above the budget {budget} (delta {delta:e})"
			),
			Refusal::NoBudget => write!(
				f,
				"the task sets no privacy floor and this trainer has no budget of its own: give --epsilon (or --noise off to publish unprotected updates)"
			),
			Refusal::Impossible(why) => write!(f, "no privacy plan: {why}"),
		}
	}
}

/// The plan for a task of `rounds` rounds whose floor is `floor`, or `None` when the
/// trainer was told to add no noise (`Method::Off`) and the task demands none. Without any
/// budget (no floor, no own epsilon) a trainer with noise refuses, unless its operator fixed
/// the noise multiplier (then that is the plan, and what it spends is accounted).
pub fn plan_task(
	floor: Option<Budget>,
	rounds: u32,
	method: Method,
	wishes: &Wishes,
) -> Result<Option<TaskPlan>, Refusal> {
	if let Some(z) = wishes.noise_multiplier {
		if !(z > 0.0 && z.is_finite()) {
			return Err(Refusal::Impossible(format!(
				"the noise multiplier must be positive and finite, got {z}"
			)));
		}
	}
	let budget = match (floor, wishes.epsilon) {
		(Some(f), own) => Some(Budget {
			epsilon: own.map_or(f.epsilon, |e| e.min(f.epsilon)),
			delta: f.delta.min(wishes.delta),
		}),
		(None, Some(e)) => Some(Budget {
			epsilon: e,
			delta: wishes.delta,
		}),
		(None, None) => None,
	};
	let Some(budget) = budget else {
		return match (method, wishes.noise_multiplier) {
			(Method::Off, _) => Ok(None),
			(Method::DpSgd { .. } | Method::Gaussian, Some(z)) => {
				let per_round = vec![z; rounds as usize];
				let epsilon = spend(method, &per_round, wishes.delta);
				Ok(Some(TaskPlan {
					budget: Budget {
						epsilon,
						delta: wishes.delta,
					},
					method,
					plan: Plan { per_round, epsilon },
				}))
			}
			_ => Err(Refusal::NoBudget),
		};
	};
	let budget = Budget::new(budget.epsilon, budget.delta)
		.map_err(|e| Refusal::Impossible(e.to_string()))?;
	if method == Method::Off {
		return match floor {
			Some(f) => Err(Refusal::NoNoise { floor: f.epsilon }),
			None => Ok(None),
		};
	}
	let calibrated = match method {
		Method::DpSgd { sample_rate, steps } => {
			plan_dp_sgd(budget, rounds, steps, sample_rate, wishes.schedule)
		}
		Method::Gaussian => plan_output(budget, rounds, wishes.schedule, false),
		Method::Laplace => plan_output(budget, rounds, wishes.schedule, true),
		Method::Off => return Ok(None),
	}
	.map_err(|e| Refusal::Impossible(e.to_string()))?;
	let plan = match (wishes.noise_multiplier, method) {
		(Some(z), Method::DpSgd { .. } | Method::Gaussian) => {
			// The operator fixed the noise: it must be at least what the budget needs in
			// every round.
			let fixed = Plan {
				per_round: vec![z; rounds as usize],
				epsilon: spend(method, &vec![z; rounds as usize], budget.delta),
			};
			if fixed.epsilon > budget.epsilon {
				return Err(Refusal::WouldExceed {
					spends: fixed.epsilon,
					budget: budget.epsilon,
					delta: budget.delta,
				});
			}
			fixed
		}
		_ => calibrated,
	};
	Ok(Some(TaskPlan {
		budget,
		method,
		plan,
	}))
}

impl TaskPlan {
	/// What `accountant` has spent, in this plan's terms: pure epsilon for Laplace, the RDP
	/// bound at the budget's delta otherwise.
	pub fn spent(&self, accountant: &super::Accountant) -> f64 {
		match self.method {
			Method::Laplace => accountant.pure_epsilon(),
			_ => accountant.epsilon(self.budget.delta),
		}
	}
}

/// The budget a task's floor stands for (`None`: the task sets none).
pub fn floor_budget(floor: Option<pallet_fl_tasks::PrivacyFloor>) -> Option<Budget> {
	floor.map(|f| Budget {
		epsilon: f64::from(f.max_epsilon_milli) / 1000.0,
		delta: f64::from(f.delta.deconstruct()) / 1e9,
	})
}

/// A task's privacy floor for people: `eps <= 3 (delta 1e-5) per trainer over the task`.
pub fn floor_text(floor: Option<pallet_fl_tasks::PrivacyFloor>) -> String {
	match floor_budget(floor) {
		Some(b) => format!(
			"eps <= {} (delta {:e}) per trainer over the task",
			b.epsilon, b.delta
		),
		None => "no privacy floor".into(),
	}
}

/// What releasing `per_round` under `method` spends at `delta`.
fn spend(method: Method, per_round: &[f64], delta: f64) -> f64 {
	let mut acc = super::Accountant::new();
	for z in per_round {
		acc.record(release(method, *z));
	}
	acc.epsilon(delta)
}

/// The release of one round of `method` at noise `value` (noise multiplier, or epsilon for
/// Laplace).
pub fn release(method: Method, value: f64) -> super::Release {
	match method {
		Method::DpSgd { sample_rate, steps } => super::Release::SampledGaussian {
			sample_rate,
			noise_multiplier: value,
			steps,
		},
		Method::Gaussian => super::Release::Gaussian {
			noise_multiplier: value,
		},
		Method::Laplace => super::Release::Laplace { epsilon: value },
		Method::Off => super::Release::None,
	}
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
	use super::*;

	const WISHES: Wishes = Wishes {
		epsilon: None,
		delta: 1e-5,
		noise_multiplier: None,
		schedule: Schedule::Constant,
	};
	const SGD: Method = Method::DpSgd {
		sample_rate: 64.0 / 3000.0,
		steps: 47,
	};

	fn floor(epsilon: f64) -> Option<Budget> {
		Some(Budget {
			epsilon,
			delta: 1e-5,
		})
	}

	#[test]
	fn the_tighter_of_floor_and_own_budget_wins() {
		let plan = plan_task(floor(3.0), 10, SGD, &WISHES).unwrap().unwrap();
		assert_eq!(plan.budget.epsilon, 3.0);
		assert!(plan.plan.epsilon <= 3.0);
		let own = Wishes {
			epsilon: Some(1.0),
			delta: 1e-6,
			..WISHES
		};
		let plan = plan_task(floor(3.0), 10, SGD, &own).unwrap().unwrap();
		assert_eq!((plan.budget.epsilon, plan.budget.delta), (1.0, 1e-6));
		assert!(plan.plan.epsilon <= 1.0);
		// An own epsilon above the floor is capped by it.
		let loose = Wishes {
			epsilon: Some(50.0),
			..WISHES
		};
		let plan = plan_task(floor(3.0), 10, SGD, &loose).unwrap().unwrap();
		assert_eq!(plan.budget.epsilon, 3.0);
		// No floor and no wish: no unprotected updates by default; explicit opt-out is fine;
		// a fixed noise multiplier is its own plan.
		assert_eq!(plan_task(None, 10, SGD, &WISHES), Err(Refusal::NoBudget));
		assert_eq!(plan_task(None, 10, Method::Off, &WISHES).unwrap(), None);
		let fixed = Wishes {
			noise_multiplier: Some(1.0),
			..WISHES
		};
		let plan = plan_task(None, 10, SGD, &fixed).unwrap().unwrap();
		assert_eq!(plan.plan.per_round, vec![1.0; 10]);
		assert!(plan.budget.epsilon > 0.0 && plan.budget.epsilon == plan.plan.epsilon);
		let negative = Wishes {
			noise_multiplier: Some(-1.0),
			..WISHES
		};
		assert!(matches!(
			plan_task(floor(3.0), 10, Method::Gaussian, &negative),
			Err(Refusal::Impossible(_))
		));
	}

	#[test]
	fn trainer_refuses_a_task_whose_total_epsilon_it_would_exceed() {
		// Without noise under a floor.
		assert_eq!(
			plan_task(floor(3.0), 10, Method::Off, &WISHES),
			Err(Refusal::NoNoise { floor: 3.0 })
		);
		// With a fixed noise multiplier too small for 10 rounds at epsilon 3.
		let fixed = Wishes {
			noise_multiplier: Some(0.6),
			..WISHES
		};
		match plan_task(floor(3.0), 10, SGD, &fixed) {
			Err(Refusal::WouldExceed { spends, budget, .. }) => {
				assert!(spends > budget && budget == 3.0, "{spends}")
			}
			other => panic!("{other:?}"),
		}
		// The same noise is fine for a looser floor, and then spends what it says.
		let plan = plan_task(floor(200.0), 10, SGD, &fixed).unwrap().unwrap();
		assert!(plan.plan.epsilon <= 200.0);
		assert_eq!(plan.plan.per_round, vec![0.6; 10]);
		// Without a floor the trainer's own noise choice stands.
		assert_eq!(plan_task(None, 10, Method::Off, &WISHES).unwrap(), None);
	}
}
