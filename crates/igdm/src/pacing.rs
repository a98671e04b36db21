//! Write pacing: a minimum jittered interval between writes and hourly and
//! daily write budgets per account. The policy comes from the connector's
//! `pacing` block, with per-account overrides; the ledger is the persisted
//! [`AccountState`](crate::state::AccountState).

use std::time::Duration;

use chrono::Duration as ChronoDuration;
use igdm_model::Timestamp;

use crate::state::AccountState;

/// How writes of one account are spaced.
#[derive(Debug, Clone, PartialEq)]
pub struct PacingPolicy {
    /// Minimum time between two writes.
    pub min_interval: Duration,
    /// Extra random delay added to `min_interval`, uniform in `0..=jitter`.
    pub jitter: Duration,
    /// Writes per rolling hour, if limited.
    pub hourly: Option<u32>,
    /// Writes per rolling day, if limited.
    pub daily: Option<u32>,
}

impl PacingPolicy {
    /// No pacing at all.
    #[must_use]
    pub fn none() -> Self {
        Self { min_interval: Duration::ZERO, jitter: Duration::ZERO, hourly: None, daily: None }
    }
}

/// What the pacer says about a write at a given time.
#[derive(Debug, Clone, PartialEq)]
pub enum PaceDecision {
    /// Go now.
    Go,
    /// Wait this long, then go.
    Wait(Duration),
    /// A budget is spent; writes resume at this time.
    BudgetExhausted {
        /// Which budget (`hourly` or `daily`).
        budget: &'static str,
        /// When a write becomes possible again.
        until: Timestamp,
    },
}

/// Decides whether a write may go at `now` given the ledger. `jitter_sample`
/// is a number in `[0, 1)` (random in production, fixed in tests).
#[must_use]
pub fn decide(
    policy: &PacingPolicy,
    state: &AccountState,
    now: Timestamp,
    jitter_sample: f64,
) -> PaceDecision {
    for (budget, limit, window) in [
        ("daily", policy.daily, ChronoDuration::days(1)),
        ("hourly", policy.hourly, ChronoDuration::hours(1)),
    ] {
        let Some(limit) = limit else { continue };
        let in_window: Vec<&Timestamp> =
            state.writes.iter().filter(|t| t.0 > now.0 - window && t.0 <= now.0).collect();
        if in_window.len() >= limit as usize {
            // The oldest write in the window leaving it frees one slot.
            let idx = in_window.len() - limit as usize;
            let until = in_window.get(idx).map_or(now, |t| Timestamp(t.0 + window));
            return PaceDecision::BudgetExhausted { budget, until };
        }
    }
    if let Some(last) = state.writes.last() {
        let gap = policy.min_interval + policy.jitter.mul_f64(jitter_sample.clamp(0.0, 1.0));
        let elapsed = (now.0 - last.0).to_std().unwrap_or(Duration::ZERO);
        if elapsed < gap {
            return PaceDecision::Wait(gap - elapsed);
        }
    }
    PaceDecision::Go
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_unix_seconds(1_800_000_000 + secs).unwrap()
    }

    #[test]
    fn spacing_and_budgets() {
        let policy = PacingPolicy {
            min_interval: Duration::from_secs(10),
            jitter: Duration::from_secs(5),
            hourly: Some(3),
            daily: Some(5),
        };
        let mut s = AccountState::default();
        assert_eq!(decide(&policy, &s, at(0), 0.0), PaceDecision::Go);
        s.writes.push(at(0));
        assert_eq!(decide(&policy, &s, at(4), 0.0), PaceDecision::Wait(Duration::from_secs(6)));
        assert_eq!(decide(&policy, &s, at(4), 1.0), PaceDecision::Wait(Duration::from_secs(11)));
        assert_eq!(decide(&policy, &s, at(20), 0.9), PaceDecision::Go);
        s.writes.push(at(100));
        s.writes.push(at(200));
        assert_eq!(
            decide(&policy, &s, at(300), 0.0),
            PaceDecision::BudgetExhausted { budget: "hourly", until: at(3600) }
        );
        assert_eq!(decide(&policy, &s, at(3601), 0.0), PaceDecision::Go);
    }
}
