//! The leader elector of `run --lease-table`: two (or more) replicas, one writer, on the
//! record-version-number lease of `gec_aws::LeaseTable` (as AWS's
//! `amazon-dynamodb-lock-client` does it; no clock is compared across hosts).
//!
//! - **Follower**: reads the item every heartbeat (`L / 4`, `L` the lease duration). No
//!   item (never taken, or released by a holder's SIGTERM): it creates one at once
//!   (conditional on there being none). An item: it remembers the RVN and the local
//!   monotonic instant it first saw it; once it has seen the same RVN for a whole lease
//!   duration (the longer of its own and the one the item states) the holder has not
//!   renewed for that long, and it takes over with a write conditional on that RVN.
//! - **Leader**: rewrites the RVN every heartbeat, conditional on still holding it with the
//!   RVN it wrote last. Each success grants the engine's [`Fence`] until
//!   `sent + L - margin` (see `gec_engine::fence` for why that is safe). A renew that
//!   fails with "lost" steps down at once. One that fails otherwise (a throttle, a 5xx, a
//!   timeout) keeps the role and tries again at the next heartbeat, as long as the lease
//!   can still be ours (`now < t_s + L`, `t_s` the send time of the last renew that
//!   succeeded); the fence closes by itself at its deadline meanwhile, and a renew that
//!   succeeds grants it again. Once `now >= t_s + L` it steps down: a contender may take
//!   over from then on. A renew whose answer was lost (a timeout, a 5xx) may have landed:
//!   later renews (and the release) accept its RVN too (at most
//!   [`gec_aws::MAX_OLD_RVNS`] such RVNs are remembered).
//! - Heartbeats are scheduled from the start of the previous one, not from its end, so a
//!   slow call does not stretch the gap between renews.
//! - **Shutdown**: the run loop stops writing first (the engine's stop signal, then the
//!   pass in flight ends); then [`Elector::run`] returns after deleting the item
//!   conditional on its RVN, so the other replica's next read finds it free.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use gec_aws::MAX_OLD_RVNS;
use gec_aws::{LeaseError, LeaseTable, RawRvn};
use gec_engine::Fence;
use schemars::JsonSchema;
use serde::Serialize;
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::{sleep, sleep_until, Instant};
use tracing::{info, warn};

use crate::http::Shared;
use crate::runloop::Trigger;
use crate::status::unix_secs;

/// Shortest `--lease-duration`.
pub const MIN_LEASE_DURATION: Duration = Duration::from_secs(2);
/// Longest `--lease-duration` (and the longest a follower waits for an item that states
/// none or a longer one).
pub const MAX_LEASE_DURATION: Duration = Duration::from_secs(600);
/// Default `--lease-duration`.
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(20);
/// Longest replica id.
pub const MAX_REPLICA_ID: usize = 40;

/// Settings of the lease.
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    /// The DynamoDB table.
    pub table: String,
    /// The item's key (`--lease-key`).
    pub key: String,
    /// This replica's id (`--replica-id`), the item's `owner` while it leads.
    pub replica_id: String,
    /// `L`: how long a holder's RVN must stay unchanged before another replica takes over.
    pub lease_duration: Duration,
}

impl LeaseSettings {
    /// How often the leader renews and a follower reads: a quarter of the lease.
    pub fn heartbeat(&self) -> Duration {
        self.lease_duration / 4
    }

    /// The longest one AWS call of the engine may take under this lease: half the lease
    /// duration (the daemon caps `--aws-operation-timeout` at it).
    pub fn max_call(&self) -> Duration {
        self.lease_duration / 2
    }
}

/// Checks a replica id: 1 to [`MAX_REPLICA_ID`] ASCII letters, digits, `.`, `_`, `-`
/// (it becomes part of the SDK app name `guardduty-ecs-controller-<id>`, which allows
/// those and a few more).
///
/// # Errors
/// What is wrong with it.
pub fn check_replica_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > MAX_REPLICA_ID {
        return Err(format!(
            "a replica id has 1 to {MAX_REPLICA_ID} characters, not {}",
            id.len()
        ));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "a replica id has only ASCII letters, digits, '.', '_' and '-', not {c:?}"
        ));
    }
    Ok(())
}

/// The elector's part of `/status`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LeaderJson {
    /// `--lease-table` is set.
    pub enabled: bool,
    /// This replica may write: it holds the lease, or runs without one and not
    /// `--dry-run`.
    pub leading: bool,
    /// The replica id of the holder as last read; null when unknown or free.
    pub holder: Option<String>,
    /// Since when the holder (as this replica knows it) leads, in seconds since the Unix
    /// epoch: when this replica took the lease, or when it first saw the holder.
    pub since: Option<f64>,
    /// This replica's id.
    pub replica_id: Option<String>,
    /// The lease table.
    pub table: Option<String>,
}

impl LeaderJson {
    /// Without a lease: the daemon leads unless it writes nothing (`--dry-run`).
    pub fn disabled(dry_run: bool) -> Self {
        LeaderJson {
            enabled: false,
            leading: !dry_run,
            holder: None,
            since: None,
            replica_id: None,
            table: None,
        }
    }
}

enum Role {
    Follower {
        /// The RVN last read (exactly as read) and when it was first seen (after the
        /// read that saw it).
        seen: Option<(RawRvn, Instant)>,
    },
    Leader {
        rvn: String,
        /// The RVNs of renews whose answer was lost (a timeout, a 5xx), newest last: any
        /// may have been written, so later renews (and the release) accept them too.
        unsure: Vec<String>,
        /// When the last renew (or acquisition) that succeeded was sent: the lease may be
        /// ours until `sent + L`.
        sent: Instant,
    },
}

/// The elector.
pub struct Elector {
    table: LeaseTable,
    settings: LeaseSettings,
    /// The longest one write call of the engine takes (its operation timeout).
    margin: Duration,
    fence: Fence,
    /// The daemon's metrics and status; `None` for `apply`.
    shared: Option<Arc<Shared>>,
    wake: UnboundedSender<Trigger>,
    holder: Option<(String, SystemTime)>,
    /// What the last read found (the holder) or why the last lease call failed, for
    /// `apply`'s refusal.
    last_read: Arc<std::sync::Mutex<Option<Result<String, String>>>>,
    /// Whether leadership ended (or the fence closed) since this replica led, for
    /// `apply`'s exit code; [`LeaseLapse::Lost`] outranks [`LeaseLapse::Lapsed`].
    lapse: Arc<std::sync::Mutex<Option<LeaseLapse>>>,
}

/// How an `apply` run's hold on the lease broke before the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LeaseLapse {
    /// Another replica took the lease over (a renew's condition failed).
    #[error(
        "the lease was lost: another replica leads; writes from then on were skipped (not_leader)"
    )]
    Lost,
    /// Renewals failed long enough for the write fence to close (or for the lease to
    /// run out): writes meanwhile were skipped.
    #[error("the lease could not be renewed in time: the write fence closed and writes meanwhile were skipped (not_leader)")]
    Lapsed,
}

impl Elector {
    /// An elector over `table` that grants `fence`; `margin` is the engine's AWS
    /// operation timeout (at most [`LeaseSettings::max_call`]); `wake` starts a round at
    /// once when this replica becomes the leader.
    pub fn new(
        table: LeaseTable,
        settings: LeaseSettings,
        margin: Duration,
        fence: Fence,
        shared: Option<Arc<Shared>>,
        wake: UnboundedSender<Trigger>,
    ) -> Self {
        let e = Elector {
            table,
            settings,
            margin,
            fence,
            shared,
            wake,
            holder: None,
            last_read: Arc::default(),
            lapse: Arc::default(),
        };
        e.publish(false);
        e
    }

    /// Heartbeats until `done` completes, then releases the lease if this replica holds
    /// it. Complete `done` only once nothing writes any more.
    pub async fn run(mut self, done: impl std::future::Future<Output = ()>) {
        tokio::pin!(done);
        let mut role = Role::Follower { seen: None };
        loop {
            let started = Instant::now();
            role = self.step(role).await;
            tokio::select! {
                biased;
                () = &mut done => break,
                () = sleep_until(started + self.settings.heartbeat()) => {}
            }
        }
        self.fence.revoke();
        if let Role::Leader { rvn, unsure, .. } = role {
            let me = &self.settings.replica_id;
            match self.table.release(me, &olds(rvn, unsure)).await {
                Ok(()) => info!(table = self.table.table(), "released the lease"),
                Err(e) => {
                    warn!(error = %e, "could not release the lease; another replica takes over once it expires")
                }
            }
            self.transition(None);
        }
    }

    async fn step(&mut self, role: Role) -> Role {
        match role {
            Role::Leader { rvn, unsure, sent } => self.renew(rvn, unsure, sent).await,
            Role::Follower { seen } => self.follow(seen).await,
        }
    }

    async fn renew(&mut self, rvn: String, mut unsure: Vec<String>, last_ok: Instant) -> Role {
        if Instant::now() >= last_ok + self.settings.lease_duration {
            // Heartbeats come from send time, so this is the heartbeat at `t_s + L`: a
            // contender may take over from now on; step down on time, not after a call.
            warn!("could not renew the lease for a whole lease duration: stepping down");
            self.note_lapse(LeaseLapse::Lapsed);
            self.step_down();
            return Role::Follower { seen: None };
        }
        let new = new_rvn();
        let me = self.settings.replica_id.clone();
        let sent = Instant::now();
        match self
            .table
            .renew(&me, &olds(rvn.clone(), unsure.clone()), &new)
            .await
        {
            Ok(()) => {
                if !self.fence.permits() {
                    self.note_lapse(LeaseLapse::Lapsed);
                }
                self.grant(sent);
                Role::Leader {
                    rvn: new,
                    unsure: Vec::new(),
                    sent,
                }
            }
            Err(LeaseError::Lost) => {
                warn!("lost the lease to another replica: stepping down");
                self.note_lapse(LeaseLapse::Lost);
                self.step_down();
                Role::Follower { seen: None }
            }
            Err(LeaseError::Aws(e)) => {
                if Instant::now() >= last_ok + self.settings.lease_duration {
                    warn!(error = %e, "could not renew the lease for a whole lease duration: stepping down");
                    self.note_lapse(LeaseLapse::Lapsed);
                    self.step_down();
                    return Role::Follower { seen: None };
                }
                warn!(error = %e, "could not renew the lease; retrying at the next heartbeat (the fence closes by itself if no renew succeeds in time)");
                if !e.proves_not_applied() {
                    unsure.push(new);
                    // The oldest first out; at worst a renew that landed is forgotten and
                    // the next one steps down as lost.
                    let excess = unsure.len().saturating_sub(MAX_OLD_RVNS - 1);
                    unsure.drain(..excess);
                }
                Role::Leader {
                    rvn,
                    unsure,
                    sent: last_ok,
                }
            }
        }
    }

    async fn follow(&mut self, seen: Option<(RawRvn, Instant)>) -> Role {
        let record = match self.table.read().await {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, "cannot read the lease");
                self.note(Err(e.to_string()));
                return Role::Follower { seen };
            }
        };
        let read_at = Instant::now();
        let me = self.settings.replica_id.clone();
        let Some(record) = record else {
            // Free: never taken, or released.
            let rvn = new_rvn();
            let sent = Instant::now();
            return match self.table.acquire_new(&me, &rvn).await {
                Ok(()) => self.became_leader(sent, rvn),
                Err(LeaseError::Lost) => Role::Follower { seen: None },
                Err(LeaseError::Aws(e)) => {
                    warn!(error = %e, "could not take the free lease");
                    self.note(Err(e.to_string()));
                    Role::Follower { seen: None }
                }
            };
        };
        self.note(Ok(record.owner.clone()));
        if self.holder.as_ref().is_none_or(|(h, _)| *h != record.owner) {
            self.holder = Some((record.owner.clone(), SystemTime::now()));
            self.publish(false);
        }
        let wait = self.settings.lease_duration.max(
            record
                .lease_duration
                .map_or(MAX_LEASE_DURATION, |d| d.min(MAX_LEASE_DURATION)),
        );
        match seen {
            Some((rvn, first)) if rvn == record.version => {
                if read_at.saturating_duration_since(first) < wait {
                    return Role::Follower {
                        seen: Some((rvn, first)),
                    };
                }
                let new = new_rvn();
                let sent = Instant::now();
                match self.table.take_over(&me, &new, &rvn).await {
                    Ok(()) => {
                        info!(previous = %record.owner, "the holder did not renew for a whole lease duration: took the lease over");
                        self.became_leader(sent, new)
                    }
                    Err(LeaseError::Lost) => Role::Follower { seen: None },
                    Err(LeaseError::Aws(e)) => {
                        warn!(error = %e, "could not take the lease over");
                        self.note(Err(e.to_string()));
                        Role::Follower {
                            seen: Some((rvn, first)),
                        }
                    }
                }
            }
            _ => Role::Follower {
                seen: Some((record.version, read_at)),
            },
        }
    }

    fn note_lapse(&self, lapse: LeaseLapse) {
        if let Ok(mut l) = self.lapse.lock() {
            if *l != Some(LeaseLapse::Lost) {
                *l = Some(lapse);
            }
        }
    }

    fn note(&self, read: Result<String, String>) {
        if let Ok(mut last) = self.last_read.lock() {
            *last = Some(read);
        }
    }

    fn became_leader(&mut self, sent: Instant, rvn: String) -> Role {
        self.grant(sent);
        self.transition(Some(true));
        let _ = self.wake.send(Trigger::Hangup);
        Role::Leader {
            rvn,
            unsure: Vec::new(),
            sent,
        }
    }

    fn grant(&self, sent: Instant) {
        let until = sent + self.settings.lease_duration.saturating_sub(self.margin);
        self.fence.grant(until);
    }

    fn step_down(&mut self) {
        self.fence.revoke();
        self.transition(Some(false));
    }

    /// Records a change of leadership: `Some(true)` leading, `Some(false)` not, `None`
    /// released (not leading, holder unknown).
    fn transition(&mut self, leading: Option<bool>) {
        let now_leading = leading == Some(true);
        self.holder = match leading {
            Some(true) => Some((self.settings.replica_id.clone(), SystemTime::now())),
            _ => None,
        };
        if let Some(shared) = &self.shared {
            shared.metrics.leader_transition(now_leading);
        }
        info!(
            leading = now_leading,
            replica_id = %self.settings.replica_id,
            "leadership changed"
        );
        self.publish(now_leading);
    }

    fn publish(&self, leading: bool) {
        let Some(shared) = &self.shared else { return };
        shared.metrics.leader.set(i64::from(leading));
        if let Ok(mut status) = shared.status.write() {
            status.leader = Some(LeaderJson {
                enabled: true,
                leading,
                holder: self.holder.as_ref().map(|(h, _)| h.clone()),
                since: self.holder.as_ref().map(|(_, t)| unix_secs(*t)),
                replica_id: Some(self.settings.replica_id.clone()),
                table: Some(self.table.table().to_owned()),
            });
        }
    }
}

/// The RVNs a renew or release accepts: the one written last, then those whose renew's
/// answer was lost.
fn olds(rvn: String, unsure: Vec<String>) -> Vec<String> {
    std::iter::once(rvn).chain(unsure).collect()
}

/// A new record version number: 128 random bits.
fn new_rvn() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replica_ids_are_checked() {
        assert!(check_replica_id("ip-10-0-1-7.ec2.internal").is_ok());
        assert!(check_replica_id("a").is_ok());
        for bad in ["", "has space", "slash/no", "ü", &"x".repeat(41)] {
            assert!(check_replica_id(bad).is_err(), "{bad:?}");
        }
    }

    use aws_sdk_dynamodb::operation::put_item::PutItemOutput;
    use aws_smithy_mocks::{mock, MockResponseInterceptor, Rule, RuleMode};
    use tokio::time::advance;

    /// A lease table whose calls are answered by `rules` (no retries: one call, one
    /// answer).
    pub(super) fn mocked_table(rules: &[&Rule], lease: Duration) -> LeaseTable {
        let mut mocks = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
        for r in rules {
            mocks = mocks.with_rule(r);
        }
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
            .http_client(aws_smithy_mocks::create_mock_http_client())
            .interceptor(mocks)
            .build();
        LeaseTable::from_client(
            aws_sdk_dynamodb::Client::from_conf(config),
            "lease",
            "k",
            lease,
        )
    }

    /// Replica `a`'s elector over `table`, with the largest margin the daemon allows (L/2).
    pub(super) fn elector(table: LeaseTable, lease: Duration) -> Elector {
        let settings = LeaseSettings {
            table: "lease".into(),
            key: "k".into(),
            replica_id: "a".into(),
            lease_duration: lease,
        };
        let (wake, _) = tokio::sync::mpsc::unbounded_channel();
        Elector::new(table, settings, lease / 2, Fence::leased(), None, wake)
    }

    fn leading(role: &Role) -> Option<usize> {
        match role {
            Role::Leader { unsure, .. } => Some(unsure.len()),
            Role::Follower { .. } => None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_renew_keeps_the_lease_until_a_whole_lease_duration_has_failed() {
        let lease = Duration::from_secs(4);
        let beat = Duration::from_secs(1);
        // A 500, a success, then 500s.
        let put = mock!(aws_sdk_dynamodb::Client::put_item)
            .sequence()
            .http_status(500, None)
            .output(|| PutItemOutput::builder().build())
            .http_status(500, None)
            .repeatedly()
            .build();
        let mut e = elector(mocked_table(&[&put], lease), lease);
        let t0 = Instant::now();
        let mut role = e.became_leader(t0, "r0".into());
        advance(beat).await;
        role = e.step(role).await;
        assert_eq!(
            leading(&role),
            Some(1),
            "one 500 keeps the lease; its RVN may have landed"
        );
        assert!(
            e.fence.permits(),
            "the fence stays open until t0 + L - margin"
        );
        advance(beat).await;
        role = e.step(role).await;
        assert_eq!(leading(&role), Some(0), "the next renew succeeds");
        // Granted from the send at t0 + 2 s: until t0 + 4 s.
        let renewed = Instant::now();
        assert_eq!(e.fence.valid_until(), Some(renewed + lease / 2));
        for k in 1..4 {
            advance(beat).await;
            role = e.step(role).await;
            assert!(
                leading(&role).is_some(),
                "{k} failures, the lease may still be ours"
            );
        }
        assert!(!e.fence.permits(), "the fence closed by itself meanwhile");
        advance(beat).await;
        role = e.step(role).await;
        assert_eq!(leading(&role), None, "failed until t_s + L: stepped down");
        assert_eq!(
            put.num_calls(),
            5,
            "at t_s + L it steps down without a call"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_item_without_an_rvn_is_taken_over_after_a_lease_duration() {
        use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
        use aws_sdk_dynamodb::types::AttributeValue;
        let lease = Duration::from_secs(4);
        let get = mock!(aws_sdk_dynamodb::Client::get_item).then_output(|| {
            GetItemOutput::builder()
                .item("key", AttributeValue::S("k".into()))
                .item("owner", AttributeValue::S("z".into()))
                .item("leaseDurationMs", AttributeValue::N("4000".into()))
                .build()
        });
        let put = mock!(aws_sdk_dynamodb::Client::put_item)
            .match_requests(|r| {
                r.condition_expression()
                    == Some("attribute_exists(#k) AND attribute_not_exists(#r)")
            })
            .then_output(|| PutItemOutput::builder().build());
        let mut e = elector(mocked_table(&[&get, &put], lease), lease);
        let mut role = e.step(Role::Follower { seen: None }).await;
        assert_eq!(leading(&role), None);
        advance(lease).await;
        role = e.step(role).await;
        assert_eq!(leading(&role), Some(0), "took over");
        assert!(e.fence.permits());
        assert_eq!(put.num_calls(), 1);
    }

    /// An `apply` run's lease over a free item whose later renews are answered by
    /// `renew`, held for two lease durations.
    async fn apply_holding(renew: &Rule, lease: Duration) -> Result<(), LeaseLapse> {
        use aws_sdk_dynamodb::operation::delete_item::DeleteItemOutput;
        use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
        let free = mock!(aws_sdk_dynamodb::Client::get_item)
            .then_output(|| GetItemOutput::builder().build());
        let acquire = mock!(aws_sdk_dynamodb::Client::put_item)
            .match_requests(|r| r.condition_expression() == Some("attribute_not_exists(#k)"))
            .then_output(|| PutItemOutput::builder().build());
        let release = mock!(aws_sdk_dynamodb::Client::delete_item)
            .then_output(|| DeleteItemOutput::builder().build());
        let settings = LeaseSettings {
            table: "lease".into(),
            key: "k".into(),
            replica_id: "a".into(),
            lease_duration: lease,
        };
        let table = mocked_table(&[&free, &acquire, renew, &release], lease);
        let held = match ApplyLease::acquire_from(table, settings, lease / 2).await {
            Ok(h) => h,
            Err(e) => panic!("a free lease is taken at once: {e}"),
        };
        assert!(held.fence.permits());
        sleep(lease * 2).await;
        held.release().await
    }

    #[tokio::test(start_paused = true)]
    async fn an_apply_that_loses_the_lease_or_cannot_renew_it_learns_it_at_release() {
        use aws_sdk_dynamodb::operation::put_item::PutItemError;
        use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
        let lease = Duration::from_secs(4);
        let renews = |r: &aws_sdk_dynamodb::operation::put_item::PutItemInput| {
            r.condition_expression()
                .is_some_and(|c| c.starts_with("#o = :me"))
        };
        let healthy = mock!(aws_sdk_dynamodb::Client::put_item)
            .match_requests(renews)
            .then_output(|| PutItemOutput::builder().build());
        assert_eq!(apply_holding(&healthy, lease).await, Ok(()));
        let taken = mock!(aws_sdk_dynamodb::Client::put_item)
            .match_requests(renews)
            .then_error(|| {
                PutItemError::ConditionalCheckFailedException(
                    ConditionalCheckFailedException::builder()
                        .message("The conditional request failed")
                        .build(),
                )
            });
        assert_eq!(apply_holding(&taken, lease).await, Err(LeaseLapse::Lost));
        let failing = mock!(aws_sdk_dynamodb::Client::put_item)
            .match_requests(renews)
            .sequence()
            .http_status(500, None)
            .repeatedly()
            .build();
        assert_eq!(
            apply_holding(&failing, lease).await,
            Err(LeaseLapse::Lapsed)
        );
    }

    #[test]
    fn rvns_differ() {
        assert_ne!(new_rvn(), new_rvn());
        assert_eq!(new_rvn().len(), 32);
    }
}

/// The lease held by one `apply --lease-table`: the same elector as the daemon's, for the
/// length of one run.
pub struct ApplyLease {
    /// Granted while this run holds the lease; pass it to the engine.
    pub fence: Fence,
    done: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
    lapse: Arc<std::sync::Mutex<Option<LeaseLapse>>>,
}

/// Why `apply` did not get the lease.
#[derive(Debug, thiserror::Error)]
pub enum LeaseRefused {
    /// Another replica holds the lease and renews it.
    #[error("another replica ({holder}) holds the lease in {table} and renews it; nothing was written (--ignore-lease writes anyway)")]
    Held {
        /// Its replica id, as last read.
        holder: String,
        /// The table.
        table: String,
    },
    /// The lease could not be read or written (no such table, no permission, an outage).
    #[error("cannot use the lease in {table}: {error}; nothing was written")]
    Unavailable {
        /// The table.
        table: String,
        /// The last failure.
        error: String,
    },
}

impl ApplyLease {
    /// Takes the lease for one run: at once when it is free (no item: never taken, or
    /// released); after a lease duration when its holder has stopped renewing (the same
    /// record version for that long); never from a holder that renews. Gives up after
    /// the lease duration and three heartbeats.
    ///
    /// # Errors
    /// [`LeaseRefused::Held`]: the lease was not free and its holder kept renewing;
    /// [`LeaseRefused::Unavailable`]: the lease calls failed.
    pub async fn acquire(
        ctx: &gec_aws::AwsContext,
        settings: LeaseSettings,
        margin: Duration,
    ) -> Result<ApplyLease, LeaseRefused> {
        let table = LeaseTable::new(
            ctx,
            &settings.table,
            &settings.key,
            settings.lease_duration,
            settings.heartbeat(),
        );
        Self::acquire_from(table, settings, margin).await
    }

    async fn acquire_from(
        table: LeaseTable,
        settings: LeaseSettings,
        margin: Duration,
    ) -> Result<ApplyLease, LeaseRefused> {
        let fence = Fence::leased();
        let (wake, _) = tokio::sync::mpsc::unbounded_channel();
        let (done, over) = tokio::sync::oneshot::channel::<()>();
        let deadline =
            Instant::now() + settings.lease_duration + settings.heartbeat().saturating_mul(3);
        let name = settings.table.clone();
        let elector = Elector::new(table, settings, margin, fence.clone(), None, wake);
        let last = Arc::clone(&elector.last_read);
        let lapse = Arc::clone(&elector.lapse);
        let task = tokio::spawn(elector.run(async move {
            let _ = over.await;
        }));
        let lease = ApplyLease {
            fence,
            done,
            task,
            lapse,
        };
        while Instant::now() < deadline {
            if lease.fence.permits() {
                return Ok(lease);
            }
            sleep(Duration::from_millis(100)).await;
        }
        let last = last.lock().ok().and_then(|l| l.clone());
        let _ = lease.release().await;
        Err(match last {
            Some(Ok(holder)) => LeaseRefused::Held {
                holder,
                table: name,
            },
            Some(Err(error)) => LeaseRefused::Unavailable { table: name, error },
            None => LeaseRefused::Unavailable {
                table: name,
                error: "no answer".to_owned(),
            },
        })
    }

    /// Gives the lease up (call it once nothing writes any more).
    ///
    /// # Errors
    /// The run did not hold the lease throughout: it was lost to another replica, or
    /// renewals failed until the write fence closed (it is closed now, or closed and
    /// reopened meanwhile). Writes the fence stopped were skipped, so the run is not
    /// complete.
    pub async fn release(self) -> Result<(), LeaseLapse> {
        let closed_now = !self.fence.permits();
        let _ = self.done.send(());
        let _ = tokio::time::timeout(crate::RELEASE_GRACE, self.task).await;
        let lapse = self.lapse.lock().ok().and_then(|l| *l);
        match lapse {
            Some(l) => Err(l),
            None if closed_now => Err(LeaseLapse::Lapsed),
            None => Ok(()),
        }
    }
}
