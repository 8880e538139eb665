//! Sending audit records to EventBridge (`--events-bus`) from a background task fed by a
//! bounded queue: reconciliation never waits for it and never fails because of it.
//! Outcomes are counted in `guardduty_controller_events_total{result}`.
//!
//! EventBridge accepts entries for a bus that does not exist and drops them (answering
//! with event ids), so the task looks the bus up with `DescribeEventBus` when it starts and,
//! while the bus is missing, again every [`BUS_RECHECK`]: meanwhile records are counted
//! `failed` and not sent, with an error log line naming the bus.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gec_aws::{AwsError, EventBus, EventEntry, PutOutcome, PUT_EVENTS_BATCH};
use prometheus::IntCounterVec;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::audit::AuditRecord;

/// Records waiting for the bus at most; more are dropped (and counted).
pub const EVENT_QUEUE: usize = 1000;
/// How long shutdown (and the end of `apply`) waits for the queued records to be sent.
pub const FLUSH_DEADLINE: Duration = Duration::from_secs(3);

/// How often a bus found missing is looked up again (only when there are records to send).
pub const BUS_RECHECK: Duration = Duration::from_secs(300);

/// The `result` labels of `events_total`.
pub const EVENT_RESULTS: [&str; 3] = ["sent", "failed", "dropped"];

/// Where the sender puts its batches: EventBridge, or a fake in tests.
pub trait Bus: Send + Sync + 'static {
    /// The bus name or ARN, for log lines.
    fn name(&self) -> &str;

    /// Whether the bus exists: `Ok(false)` only when EventBridge says it does not.
    fn exists(&self) -> impl Future<Output = Result<bool, AwsError>> + Send;

    /// Puts at most [`PUT_EVENTS_BATCH`] entries.
    fn put(
        &self,
        entries: &[EventEntry],
    ) -> impl Future<Output = Result<PutOutcome, AwsError>> + Send;
}

impl Bus for EventBus {
    fn name(&self) -> &str {
        EventBus::name(self)
    }

    async fn exists(&self) -> Result<bool, AwsError> {
        EventBus::exists(self).await
    }

    async fn put(&self, entries: &[EventEntry]) -> Result<PutOutcome, AwsError> {
        EventBus::put(self, entries).await
    }
}

/// The `events_total` counter, with every `result` label present from the start.
///
/// # Errors
/// Only on a programming error (a bad metric name).
pub fn events_counter() -> Result<IntCounterVec, prometheus::Error> {
    let counter = IntCounterVec::new(
        prometheus::Opts::new(
            format!("{}events_total", crate::metrics::PREFIX),
            "Audit events for the EventBridge bus by result: sent, failed (PutEvents or the entry refused), dropped (queue full, or unsent at shutdown)",
        ),
        &["result"],
    )?;
    for r in EVENT_RESULTS {
        counter.with_label_values(&[r]);
    }
    Ok(counter)
}

/// `events_total` so far: (sent, failed, dropped).
pub fn totals(counter: &IntCounterVec) -> (u64, u64, u64) {
    let get = |result: &str| counter.with_label_values(&[result]).get();
    (get("sent"), get("failed"), get("dropped"))
}

/// The queue in front of the bus and its background task.
#[derive(Debug)]
pub struct EventSender {
    tx: mpsc::Sender<EventEntry>,
    task: JoinHandle<()>,
    counter: IntCounterVec,
    /// Entries queued, and entries the task has finished with (sent or failed).
    queued: Arc<AtomicU64>,
    done: Arc<AtomicU64>,
    /// Whether the bus was last found not to exist.
    missing: Arc<AtomicBool>,
}

/// What [`EventSender::flush`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flushed {
    /// The bus did not exist when last looked up (its records were counted `failed`).
    pub bus_missing: bool,
}

impl EventSender {
    /// Starts the task that sends to `bus`, counting into `counter` (see
    /// [`events_counter`]). Needs a tokio runtime.
    pub fn start(bus: impl Bus, counter: IntCounterVec) -> Self {
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        let done = Arc::new(AtomicU64::new(0));
        let missing = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(send_all(
            bus,
            rx,
            counter.clone(),
            Arc::clone(&done),
            Arc::clone(&missing),
        ));
        EventSender {
            tx,
            task,
            counter,
            queued: Arc::new(AtomicU64::new(0)),
            done,
            missing,
        }
    }

    /// Queues `record`; never waits. A full queue drops it (counted `dropped`).
    pub fn send(&self, record: &AuditRecord) {
        let entry = EventEntry {
            detail_type: record.event.detail_type(),
            detail: record.to_json(),
            resources: record.arns(),
        };
        match self.tx.try_send(entry) {
            Ok(()) => {
                self.queued.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => self.counter.with_label_values(&["dropped"]).inc(),
        }
    }

    /// Sends what is queued within `deadline`, then stops the task; what is still unsent
    /// then is counted `dropped`.
    pub async fn flush(self, deadline: Duration) -> Flushed {
        let EventSender {
            tx,
            mut task,
            counter,
            queued,
            done,
            missing,
        } = self;
        drop(tx); // the task ends once the queue is empty
        if tokio::time::timeout(deadline, &mut task).await.is_err() {
            task.abort();
            let _ = task.await;
            let unsent = queued
                .load(Ordering::Relaxed)
                .saturating_sub(done.load(Ordering::Relaxed));
            if unsent > 0 {
                warn!(
                    unsent,
                    "audit events not sent to the event bus within {deadline:?} of shutdown"
                );
                counter.with_label_values(&["dropped"]).inc_by(unsent);
            }
        }
        Flushed {
            bus_missing: missing.load(Ordering::Relaxed),
        }
    }
}

/// What the task knows of the bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    /// It exists, or could not be looked up (then records are sent as usual).
    Present,
    /// EventBridge said it does not exist, at this instant.
    Missing(Instant),
}

/// Looks the bus up. A lookup that fails (access denied, throttled, unreachable) is
/// warned about once and the records are sent as usual. A bus named by ARN that is not
/// found is sent to as well: `DescribeEventBus` only describes buses of the caller's
/// account, and PutEvents to another account's bus works with a resource policy.
async fn look_up(bus: &impl Bus, warned: &mut bool) -> Found {
    match bus.exists().await {
        Ok(true) => Found::Present,
        Ok(false) if bus.name().starts_with("arn:") => {
            if !std::mem::replace(warned, true) {
                warn!(
                    bus = bus.name(),
                    "DescribeEventBus does not find the event bus; sending anyway, since a bus of another account cannot be described"
                );
            }
            Found::Present
        }
        Ok(false) => Found::Missing(Instant::now()),
        Err(e) => {
            if !std::mem::replace(warned, true) {
                warn!(bus = bus.name(), error = %e, kind = e.kind.as_str(), code = e.code.as_deref(), "could not check that the event bus exists; sending anyway");
            }
            Found::Present
        }
    }
}

async fn send_all(
    bus: impl Bus,
    mut rx: mpsc::Receiver<EventEntry>,
    counter: IntCounterVec,
    done: Arc<AtomicU64>,
    missing: Arc<AtomicBool>,
) {
    let mut warned = false;
    let mut found = look_up(&bus, &mut warned).await;
    let mut unsent_since_log = 0u64;
    if matches!(found, Found::Missing(_)) {
        missing.store(true, Ordering::Relaxed);
        error!(
            bus = bus.name(),
            "the event bus does not exist: audit events are not sent and are counted failed until it does (checked again every {BUS_RECHECK:?})"
        );
    }
    let mut batch = Vec::with_capacity(PUT_EVENTS_BATCH);
    while rx.recv_many(&mut batch, PUT_EVENTS_BATCH).await > 0 {
        let n = batch.len() as u64;
        if let Found::Missing(at) = found {
            if at.elapsed() >= BUS_RECHECK {
                found = look_up(&bus, &mut warned).await;
                match found {
                    Found::Present => {
                        missing.store(false, Ordering::Relaxed);
                        info!(
                            bus = bus.name(),
                            "the event bus exists now: audit events are sent again"
                        );
                    }
                    Found::Missing(_) => {
                        error!(
                            bus = bus.name(),
                            failed = unsent_since_log,
                            "the event bus still does not exist: audit events are counted failed"
                        );
                        unsent_since_log = 0;
                    }
                }
            }
        }
        if matches!(found, Found::Missing(_)) {
            counter.with_label_values(&["failed"]).inc_by(n);
            unsent_since_log += n;
            done.fetch_add(n, Ordering::Relaxed);
            batch.clear();
            continue;
        }
        match bus.put(&batch).await {
            Ok(out) => {
                counter.with_label_values(&["sent"]).inc_by(out.sent as u64);
                counter
                    .with_label_values(&["failed"])
                    .inc_by(out.failed as u64);
                if out.failed > 0 {
                    warn!(
                        failed = out.failed,
                        code = out.first_error.as_deref(),
                        "the event bus refused audit events"
                    );
                }
            }
            Err(e) => {
                counter.with_label_values(&["failed"]).inc_by(n);
                warn!(error = %e, kind = e.kind.as_str(), code = e.code.as_deref(), events = n, "could not put audit events on the event bus");
            }
        }
        done.fetch_add(n, Ordering::Relaxed);
        batch.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;
    use std::sync::Mutex;

    use gec_aws::ErrorKind;

    use super::*;
    use crate::audit::{AuditRecord, EventKind};

    fn record(n: u64) -> AuditRecord {
        AuditRecord {
            event: EventKind::Write,
            time: "2026-01-01T00:00:00Z".into(),
            target: Some("us-east-1".into()),
            account: None,
            region: Some("us-east-1".into()),
            resource: "arn:aws:ecs:us-east-1:111122223333:cluster/apps".into(),
            kind: "tag_cluster".into(),
            from: None,
            to: Some("true".into()),
            result: None,
            reason: None,
            pass_id: n,
            desired_state_sha256: None,
            replica_id: None,
        }
    }

    /// Records the batches; refuses every `refuse`-th entry, or fails every call.
    #[derive(Clone, Default)]
    struct Fake {
        batches: Arc<Mutex<Vec<usize>>>,
        fail: bool,
        refuse_one: bool,
        /// Never answers (a hung endpoint).
        hang: bool,
        /// DescribeEventBus says the bus does not exist.
        missing: Arc<AtomicBool>,
        /// DescribeEventBus fails (access denied).
        describe_fails: bool,
        /// The bus is named by ARN.
        arn: bool,
        describes: Arc<AtomicU64>,
    }

    impl Bus for Fake {
        fn name(&self) -> &str {
            if self.arn {
                "arn:aws:events:us-east-1:999999999999:event-bus/audit"
            } else {
                "audit"
            }
        }

        async fn exists(&self) -> Result<bool, AwsError> {
            self.describes.fetch_add(1, Ordering::Relaxed);
            if self.describe_fails {
                return Err(AwsError::new(
                    ErrorKind::AccessDenied,
                    "DescribeEventBus",
                    Some("AccessDeniedException".into()),
                    "not authorized to perform: events:DescribeEventBus",
                ));
            }
            Ok(!self.missing.load(Ordering::Relaxed))
        }

        async fn put(&self, entries: &[EventEntry]) -> Result<PutOutcome, AwsError> {
            if self.hang {
                std::future::pending::<()>().await;
            }
            self.batches.lock().unwrap().push(entries.len());
            if self.fail {
                return Err(AwsError::new(
                    ErrorKind::NotFound,
                    "PutEvents",
                    Some("ResourceNotFoundException".into()),
                    "Event bus nope does not exist.",
                ));
            }
            let failed = usize::from(self.refuse_one);
            Ok(PutOutcome {
                sent: entries.len() - failed,
                failed,
                first_error: self.refuse_one.then(|| "InternalFailure".into()),
            })
        }
    }

    fn count(counter: &IntCounterVec, result: &str) -> u64 {
        counter.with_label_values(&[result]).get()
    }

    #[tokio::test]
    async fn queued_records_go_out_in_batches_of_ten_and_are_counted_sent() {
        let counter = events_counter().unwrap();
        let bus = Fake::default();
        let sender = EventSender::start(bus.clone(), counter.clone());
        for n in 0..25 {
            sender.send(&record(n));
        }
        sender.flush(FLUSH_DEADLINE).await;
        let batches = bus.batches.lock().unwrap().clone();
        assert_eq!(batches.iter().sum::<usize>(), 25);
        assert!(
            batches.iter().all(|b| *b <= PUT_EVENTS_BATCH),
            "{batches:?}"
        );
        assert_eq!(count(&counter, "sent"), 25);
        assert_eq!(count(&counter, "failed"), 0);
        assert_eq!(count(&counter, "dropped"), 0);
    }

    #[tokio::test]
    async fn a_failing_bus_and_refused_entries_are_counted_failed() {
        let counter = events_counter().unwrap();
        let sender = EventSender::start(
            Fake {
                fail: true,
                ..Fake::default()
            },
            counter.clone(),
        );
        for n in 0..3 {
            sender.send(&record(n));
        }
        sender.flush(FLUSH_DEADLINE).await;
        assert_eq!(count(&counter, "failed"), 3);
        assert_eq!(count(&counter, "sent"), 0);

        let counter = events_counter().unwrap();
        let sender = EventSender::start(
            Fake {
                refuse_one: true,
                ..Fake::default()
            },
            counter.clone(),
        );
        sender.send(&record(1));
        sender.send(&record(2));
        sender.flush(FLUSH_DEADLINE).await;
        assert_eq!(count(&counter, "failed") + count(&counter, "sent"), 2);
        assert!(count(&counter, "failed") >= 1);
    }

    /// A hung bus: the queue fills, further records are dropped at once (the caller never
    /// waits), and shutdown gives up after its deadline, counting the unsent ones.
    #[tokio::test]
    async fn a_full_queue_drops_and_a_hung_bus_does_not_hold_up_shutdown() {
        let counter = events_counter().unwrap();
        let sender = EventSender::start(
            Fake {
                hang: true,
                ..Fake::default()
            },
            counter.clone(),
        );
        let extra = 7;
        for n in 0..(EVENT_QUEUE + PUT_EVENTS_BATCH + extra) as u64 {
            sender.send(&record(n));
            tokio::task::yield_now().await;
        }
        let dropped_at_once = count(&counter, "dropped");
        assert!(dropped_at_once >= extra as u64, "{dropped_at_once}");
        // A short deadline: the bus never answers, so the flush always runs it out.
        sender.flush(Duration::from_millis(50)).await;
        assert_eq!(
            count(&counter, "dropped"),
            (EVENT_QUEUE + PUT_EVENTS_BATCH + extra) as u64,
            "every record is dropped: none was sent"
        );
        assert_eq!(count(&counter, "sent"), 0);
    }

    fn missing() -> Fake {
        Fake {
            missing: Arc::new(AtomicBool::new(true)),
            ..Fake::default()
        }
    }

    #[tokio::test]
    async fn records_for_a_bus_that_does_not_exist_are_counted_failed_and_not_put() {
        let counter = events_counter().unwrap();
        let bus = missing();
        let sender = EventSender::start(bus.clone(), counter.clone());
        for n in 0..12 {
            sender.send(&record(n));
        }
        let flushed = sender.flush(FLUSH_DEADLINE).await;
        assert!(flushed.bus_missing);
        assert_eq!(count(&counter, "failed"), 12);
        assert_eq!(count(&counter, "sent"), 0);
        assert!(bus.batches.lock().unwrap().is_empty(), "nothing was put");
        assert_eq!(bus.describes.load(Ordering::Relaxed), 1, "looked up once");
    }

    #[tokio::test]
    async fn a_missing_bus_is_reported_even_without_records() {
        let sender = EventSender::start(missing(), events_counter().unwrap());
        assert!(sender.flush(FLUSH_DEADLINE).await.bus_missing);
        let sender = EventSender::start(Fake::default(), events_counter().unwrap());
        assert!(!sender.flush(FLUSH_DEADLINE).await.bus_missing);
    }

    /// The bus is created later: it is looked up again after [`BUS_RECHECK`], not before,
    /// and records go out again.
    #[tokio::test(start_paused = true)]
    async fn a_missing_bus_is_looked_up_again_every_few_minutes() {
        let counter = events_counter().unwrap();
        let bus = missing();
        let sender = EventSender::start(bus.clone(), counter.clone());
        let settle = || async {
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
        };
        sender.send(&record(1));
        settle().await;
        assert_eq!(count(&counter, "failed"), 1);
        bus.missing.store(false, Ordering::Relaxed); // created
        tokio::time::advance(BUS_RECHECK / 2).await;
        sender.send(&record(2));
        settle().await;
        assert_eq!(count(&counter, "failed"), 2, "not looked up again yet");
        assert_eq!(bus.describes.load(Ordering::Relaxed), 1);
        tokio::time::advance(BUS_RECHECK / 2).await;
        sender.send(&record(3));
        let flushed = sender.flush(FLUSH_DEADLINE).await;
        assert_eq!(bus.describes.load(Ordering::Relaxed), 2);
        assert_eq!(count(&counter, "sent"), 1);
        assert_eq!(count(&counter, "failed"), 2);
        assert!(!flushed.bus_missing);
    }

    /// A lookup that fails, or a bus named by another account's ARN (DescribeEventBus
    /// describes the caller's buses only): the records are sent as usual.
    #[tokio::test]
    async fn a_failed_lookup_or_an_arn_not_found_sends_as_usual() {
        for bus in [
            Fake {
                describe_fails: true,
                ..Fake::default()
            },
            Fake {
                arn: true,
                ..missing()
            },
        ] {
            let counter = events_counter().unwrap();
            let sender = EventSender::start(bus.clone(), counter.clone());
            sender.send(&record(1));
            sender.send(&record(2));
            let flushed = sender.flush(FLUSH_DEADLINE).await;
            assert_eq!(count(&counter, "sent"), 2);
            assert!(!flushed.bus_missing);
        }
    }
}
