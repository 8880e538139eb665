//! Pass-level backoff per target: a target whose pass failed is retried after an
//! exponentially growing, jittered, capped delay instead of on every trigger, so a
//! throttled or broken account does not hammer AWS (the SDK's own per-call retries come
//! first).

use std::collections::HashMap;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use gec_model::desired::Target;
use tokio::time::Instant;

/// First retry delay after a failed pass.
pub const FIRST_RETRY: Duration = Duration::from_secs(30);
/// Longest delay between retries of a failing target.
pub const MAX_RETRY: Duration = Duration::from_secs(30 * 60);

/// The targets in backoff, with when each may be tried again.
#[derive(Debug, Default)]
pub struct Backoff {
    failing: HashMap<Target, (ExponentialBackoff, Instant)>,
}

impl Backoff {
    /// Whether a target may be reconciled at `now`.
    pub fn is_due(&self, target: &Target, now: Instant) -> bool {
        self.failing.get(target).is_none_or(|(_, due)| *due <= now)
    }

    /// The earliest time a failing target is due, if any.
    pub fn next_due(&self) -> Option<Instant> {
        self.failing.values().map(|(_, due)| *due).min()
    }

    /// Records a pass's outcome for a target; returns the delay before its next try when
    /// it failed.
    pub fn record(&mut self, target: &Target, failed: bool, now: Instant) -> Option<Duration> {
        if !failed {
            self.failing.remove(target);
            return None;
        }
        let (delays, due) = self.failing.entry(target.clone()).or_insert_with(|| {
            let delays = ExponentialBuilder::default()
                .with_min_delay(FIRST_RETRY)
                .with_max_delay(MAX_RETRY)
                .with_factor(2.0)
                .with_jitter()
                .without_max_times()
                .build();
            (delays, now)
        });
        let delay = delays.next().unwrap_or(MAX_RETRY);
        *due = now + delay;
        Some(delay)
    }

    /// Forgets targets that are no longer in the desired state.
    pub fn retain(&mut self, targets: &[Target]) {
        self.failing.retain(|t, _| targets.contains(t));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            region: "eu-west-1".into(),
            role_arn: None,
            external_id: None,
            org: None,
        }
    }

    #[test]
    fn a_failing_target_waits_longer_each_time_up_to_the_cap_and_a_success_resets_it() {
        let mut b = Backoff::default();
        let now = Instant::now();
        let t = target();
        assert!(b.is_due(&t, now));
        let mut previous = Duration::ZERO;
        for i in 0..12 {
            let d = b.record(&t, true, now).unwrap();
            assert!(
                d <= MAX_RETRY * 2,
                "capped (jitter adds at most the delay): {d:?}"
            );
            if i < 4 {
                assert!(d >= previous, "grows: {previous:?} then {d:?}");
            }
            previous = d;
            assert!(!b.is_due(&t, now), "not due right after a failure");
            assert!(b.is_due(&t, now + d), "due once the delay passed");
        }
        assert!(previous >= MAX_RETRY, "reaches the cap: {previous:?}");
        assert_eq!(b.record(&t, false, now), None);
        assert!(b.is_due(&t, now), "a success resets the backoff");
        assert_eq!(b.next_due(), None);
    }
}
