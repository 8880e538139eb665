//! The write fence: with a lease (`run --lease-table`), a replica writes to AWS only while
//! it holds the lease, and checks that before **every** write, not only at the start of a
//! pass.
//!
//! # The arithmetic
//!
//! The lease is a record-version-number lease (see `gec_aws::LeaseTable`): the holder
//! rewrites the item's RVN every heartbeat; a contender takes over only after it has seen
//! one RVN unchanged for a whole lease duration `L`, measured on its own monotonic clock,
//! and only by a write conditional on that RVN. No clock is compared across hosts.
//!
//! Say the holder sent the renew request that wrote RVN `v` at `t_send` (its clock) and
//! saw it succeed. A contender can first see `v` no earlier than the moment it was
//! written, which is after `t_send`; so it cannot take over before `t_send + L` (assuming
//! both clocks run at the same rate; they are not compared). The holder is granted
//!
//! ```text
//!     valid_until = t_send + L - margin,   margin >= the longest one write call can take
//! ```
//!
//! and starts a write only while `now < valid_until`. A write started at `t < valid_until`
//! ends (lands or fails) before `t + margin < t_send + L`: before any contender can take
//! over. A renew that fails changes nothing: the grant stays what the last successful
//! renew gave, and the fence closes by itself at `valid_until`. The daemon's margin is the
//! AWS operation timeout of every call (`--aws-operation-timeout`, all attempts and
//! backoff included; `write_once`'s single attempts are bounded by the attempt timeout,
//! which is shorter), and with a lease that timeout is capped at `L / 2`, so `margin <= L / 2`
//! and the fence stays open for `L / 2` after each renew (heartbeats come every `L / 4`).
//!
//! # Every request, not every call
//!
//! One adapter call can make several AWS writes (the Tagging API takes 20 ARNs per
//! request; a detector update reads, then writes). So the fence is checked where the
//! request leaves: an SDK interceptor ([`FenceInterceptor`], installed on every target
//! client by [`crate::AwsContext::with_fence`]) refuses each attempt of a write operation
//! ([`WRITE_OPERATIONS`]) while the fence is closed, before it is sent. Each attempt is
//! bounded by the attempt timeout, at most the margin. The engine also checks before each
//! phase and redeploy, to skip (not fail) what it cannot write.
//!
//! # Suspend
//!
//! The monotonic clock stops while the machine sleeps (Linux `CLOCK_MONOTONIC`), so a
//! laptop running `apply --lease-table` could wake with its fence "open" long after the
//! lease ran out. A grant also remembers the wall-clock time it was made at: the fence is
//! open only while *both* clocks say less than the granted span has passed. A wall clock
//! that jumps forward only closes it early (safe); one that jumps back is caught by the
//! monotonic one.
//!
//! # Caveats
//! A request AWS holds longer than the client's timeout before applying it can still land
//! later; AWS gives no bound (the same caveat as `write_once`'s settle time).

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use tokio::time::Instant;

/// The operations that change AWS, refused by [`FenceInterceptor`] while the fence is
/// closed: every write the controller makes.
pub const WRITE_OPERATIONS: &[&str] = &[
    "TagResources",
    "UntagResources",
    "UpdateDetector",
    "UpdateMemberDetectors",
    "UpdateOrganizationConfiguration",
    "UpdateService",
    "CreateDeployment",
];

/// The message of a write refused by the fence (and the `code` of its error).
pub const NOT_LEADER: &str = "NotLeader";

/// One grant: open until `until` on the monotonic clock, and for `until - at` of wall
/// time after `wall`.
#[derive(Debug, Clone, Copy)]
struct Grant {
    until: Instant,
    at: Instant,
    wall: SystemTime,
}

impl Grant {
    fn open(&self) -> bool {
        let now = Instant::now();
        if now >= self.until {
            return false;
        }
        let span = self.until.saturating_duration_since(self.at);
        // A wall clock behind the grant's (set back) is left to the monotonic check.
        let slept = SystemTime::now()
            .duration_since(self.wall)
            .unwrap_or(Duration::ZERO);
        slept < span
    }
}

/// Whether this replica may write now. Cheap to clone; clones share the grant.
/// [`Fence::default`] (no lease) always permits.
#[derive(Debug, Clone, Default)]
pub struct Fence(Option<Arc<Mutex<Option<Grant>>>>);

impl Fence {
    /// A fence of a leased replica: closed until [`Fence::grant`].
    pub fn leased() -> Self {
        Fence(Some(Arc::new(Mutex::new(None))))
    }

    /// Whether this fence belongs to a lease (false: it always permits).
    pub fn is_leased(&self) -> bool {
        self.0.is_some()
    }

    /// Open until `until` (see the module docs for how the elector computes it). A grant
    /// never shortens a later one already given.
    pub fn grant(&self, until: Instant) {
        if let Some(g) = &self.0 {
            if let Ok(mut g) = g.lock() {
                let new = Grant {
                    until,
                    at: Instant::now(),
                    wall: SystemTime::now(),
                };
                *g = Some(match *g {
                    Some(old) if old.until >= until && old.open() => old,
                    _ => new,
                });
            }
        }
    }

    /// Closed from now on, until the next [`Fence::grant`].
    pub fn revoke(&self) {
        if let Some(g) = &self.0 {
            if let Ok(mut g) = g.lock() {
                *g = None;
            }
        }
    }

    /// Until when writes may start, for a leased fence that is open.
    pub fn valid_until(&self) -> Option<Instant> {
        let g = self.0.as_ref()?;
        let grant = g.lock().ok().and_then(|g| *g)?;
        grant.open().then_some(grant.until)
    }

    /// Whether a write may start now.
    pub fn permits(&self) -> bool {
        match &self.0 {
            None => true,
            Some(_) => self.valid_until().is_some(),
        }
    }

    /// The SDK interceptor that refuses write requests while this fence is closed.
    pub fn interceptor(&self) -> FenceInterceptor {
        FenceInterceptor(self.clone())
    }
}

/// Refuses every attempt of a [`WRITE_OPERATIONS`] request while its fence is closed,
/// before the request is sent (see the module docs). Reads always pass.
#[derive(Debug, Clone)]
pub struct FenceInterceptor(Fence);

/// The error of a refused attempt.
#[derive(Debug, thiserror::Error)]
#[error("{NOT_LEADER}: {operation} not sent: this replica's lease may have run out")]
pub struct NotLeader {
    /// The operation refused.
    pub operation: String,
}

impl Intercept for FenceInterceptor {
    fn name(&self) -> &'static str {
        "gec-write-fence"
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if self.0.permits() {
            return Ok(());
        }
        let operation = cfg.load::<Metadata>().map(|m| m.name().to_owned());
        match operation {
            Some(op) if !WRITE_OPERATIONS.contains(&op.as_str()) => Ok(()),
            // A write, or an operation that cannot be told: not sent.
            op => Err(Box::new(NotLeader {
                operation: op.unwrap_or_else(|| "request".to_owned()),
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_grant_expires_by_itself_and_a_revoke_closes_at_once() {
        assert!(Fence::default().permits(), "no lease: always");
        let f = Fence::leased();
        assert!(!f.permits(), "closed until granted");
        f.grant(Instant::now() + Duration::from_secs(10));
        assert!(f.clone().permits());
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(!f.permits(), "closed at valid_until");
        f.grant(Instant::now() + Duration::from_secs(10));
        f.grant(Instant::now() + Duration::from_secs(1));
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(f.permits(), "an older, shorter grant does not shorten it");
        f.revoke();
        assert!(!f.permits());
    }

    #[test]
    fn a_grant_closes_when_the_wall_clock_says_its_span_passed() {
        // The monotonic clock stood still (a suspended machine) while the wall clock ran:
        // a grant made "an hour ago" by the wall clock is closed even though the
        // monotonic deadline is still ahead.
        let now = Instant::now();
        let grant = Grant {
            until: now + Duration::from_secs(10),
            at: now,
            wall: SystemTime::now() - Duration::from_secs(3600),
        };
        assert!(!grant.open());
        let fresh = Grant {
            wall: SystemTime::now(),
            ..grant
        };
        assert!(fresh.open());
        // A wall clock set back (the grant "in the future") is left to the monotonic one.
        let future = Grant {
            wall: SystemTime::now() + Duration::from_secs(3600),
            ..grant
        };
        assert!(future.open());
    }
}
