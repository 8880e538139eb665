//! The daemon (`run`): the reconcile loop, desired-state reload with last known good,
//! Prometheus metrics, the HTTP endpoints and graceful shutdown.
#![deny(missing_docs)]

pub mod audit;
pub mod bus;
pub mod conflicts;
pub mod emf;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod page;
pub mod read;
pub mod reconcile;
pub mod runloop;
pub mod serve;
pub mod source;
pub mod status;
#[cfg(test)]
mod testing;
pub mod watch;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::http::Shared;
use crate::runloop::{run_loop, LoopSettings, Trigger};
use crate::source::{Location, Source};
use crate::status::Status;

/// Settings of `run`.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The desired-state file, or `s3://bucket/key`.
    pub config: String,
    /// How often an `s3://` desired state is polled.
    pub config_poll: std::time::Duration,
    /// HTTP address for `/metrics`, `/healthz`, `/readyz`, `/status`.
    pub listen: SocketAddr,
    /// Connection cap and timeouts of the HTTP server.
    pub http: serve::ServeSettings,
    /// When set, `/status` needs `Authorization: Bearer <token>`.
    pub status_token: Option<http::BearerToken>,
    /// Plan every pass, write nothing.
    pub dry_run: bool,
    /// Targets reconciled at once.
    pub max_concurrent_targets: usize,
    /// How often passes come while redeploys roll (`redeploy.waitForSteadyState`: a
    /// rollout started by this process has not settled, or a redeploy waits for its settle
    /// time or a free `maxConcurrent` slot), instead of every `reconcile.interval`.
    /// [`DEFAULT_ROLLOUT_POLL`] by default; at least 1 s, at most the interval.
    pub rollout_poll: std::time::Duration,
    /// Retries and timeouts of AWS calls.
    pub calls: gec_aws::CallSettings,
    /// Ceilings of the desired state's safety limits (the file cannot raise them).
    pub ceilings: gec_model::plan::Ceilings,
    /// `--events-bus`: the EventBridge bus the audit records also go to.
    pub events_bus: Option<String>,
    /// This replica's id, in every audit record (`--replica-id`).
    pub replica_id: Option<String>,
    /// `--lease-table`: run as one of several replicas, writing only while leading.
    pub lease: Option<leader::LeaseSettings>,
    /// The version and commit `/status` and the status page show (`--version`).
    pub version: String,
    /// `POST /reconcile`: the least time between two accepted requests.
    pub reconcile_min_interval: std::time::Duration,
    /// `--metrics-emf`: the key metrics of each pass as CloudWatch EMF lines on stdout.
    pub metrics_emf: Option<emf::EmfSettings>,
}

/// Default of [`Settings::rollout_poll`].
pub const DEFAULT_ROLLOUT_POLL: std::time::Duration = std::time::Duration::from_secs(15);

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The HTTP address could not be bound.
    #[error("cannot listen on {addr}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Registering a metric failed (a programming error).
    #[error("cannot register the metrics")]
    Metrics(#[from] prometheus::Error),
    /// An AWS endpoint setting is present but empty.
    #[error(transparent)]
    Endpoint(#[from] gec_aws::EmptyEndpoint),
    /// The HTTP server task failed (a programming error).
    #[error("the HTTP server failed")]
    Serve(#[source] tokio::task::JoinError),
}

/// Runs the daemon until `shutdown` completes, then stops within a few seconds.
///
/// `shutdown` is first polled only once the AWS clients are built, after /healthz already
/// answers: whatever it waits for (signal handlers) must be listening before it is passed.
///
/// # Errors
/// The HTTP address cannot be bound, or the HTTP server task panics.
pub async fn run(
    mut settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DaemonError> {
    if settings.dry_run && settings.lease.take().is_some() {
        // A replica that writes nothing must not hold the lease: the others would wait
        // for it and nobody would write.
        warn!("--dry-run writes nothing: it takes no lease (--lease-table is ignored)");
    }
    let metrics = metrics::Metrics::new()?;
    let (tx, rx) = mpsc::unbounded_channel();
    let reconcile = reconcile::Requests::new(
        tx.clone(),
        settings.reconcile_min_interval,
        metrics.reconcile_requests_total.clone(),
    );
    let shared = Arc::new(Shared {
        metrics,
        status: RwLock::new(Status {
            source: settings.config.clone(),
            dry_run: settings.dry_run,
            version: settings.version.clone(),
            ..Status::default()
        }),
        token: settings.status_token.clone(),
        conflicts: gec_engine::Conflicts::default(),
        reconcile,
    });
    let listener = listen(settings.listen).map_err(|source| DaemonError::Listen {
        addr: settings.listen,
        source,
    })?;
    let addr = listener.local_addr().unwrap_or(settings.listen);
    let http_settings = serve::ServeSettings {
        max_connections: serve::fit_to_descriptors(settings.http.max_connections),
        ..settings.http
    };
    info!(
        %addr,
        max_connections = http_settings.max_connections,
        status_token = shared.token.is_some(),
        "serving /metrics /healthz /readyz /status"
    );

    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let app = http::router(Arc::clone(&shared));
    let server = tokio::spawn(serve::serve(listener, app, http_settings, async move {
        let _ = http_stopped.await;
    }));

    let location = Location::parse(&settings.config);
    let _watcher = match &location {
        Location::File(path) => match watch::watch(path, tx.clone()) {
            Ok(w) => Some(w),
            Err(e) => {
                warn!(error = %e, "cannot watch the desired-state folder; changes are picked up on the interval");
                None
            }
        },
        Location::Object(_) => None,
    };
    let wake = tx.clone();
    spawn_hangup(tx);

    let calls = match &settings.lease {
        Some(lease) => leased_calls(settings.calls, lease),
        None => settings.calls,
    };
    let mut ctx = match gec_aws::AwsContext::from_env(calls).await {
        Ok(ctx) => ctx.with_metrics(shared.metrics.aws.clone()),
        Err(e) => {
            let _ = stop_http.send(());
            return Err(DaemonError::Endpoint(e));
        }
    };
    let fence = match &settings.lease {
        Some(_) => gec_engine::Fence::leased(),
        None => gec_engine::Fence::default(),
    };
    // The adapter checks it too, on every write request it sends.
    ctx = ctx.with_fence(fence.clone());
    let (done, writes_over) = tokio::sync::oneshot::channel::<()>();
    let mut elector = None;
    match &settings.lease {
        // A daemon without a lease is the writer, unless it writes nothing.
        None => shared.metrics.leader.set(i64::from(!settings.dry_run)),
        Some(lease) => {
            let app = app_name(&lease.replica_id);
            ctx = match ctx.clone().with_app_name(&app) {
                Ok(c) => c,
                Err(e) => {
                    warn!(error = %e, app, "cannot set the SDK app name");
                    ctx
                }
            };
            info!(
                table = %lease.table,
                key = %lease.key,
                replica_id = %lease.replica_id,
                lease_duration = ?lease.lease_duration,
                aws_operation_timeout = ?calls.operation_timeout,
                user_agent = %format!("app/{app}"),
                "leader election on a DynamoDB lease: writing only while leading"
            );
            let table = gec_aws::LeaseTable::new(
                &ctx,
                &lease.table,
                &lease.key,
                lease.lease_duration,
                lease.heartbeat(),
            );
            let e = leader::Elector::new(
                table,
                lease.clone(),
                calls.operation_timeout,
                fence.clone(),
                Some(Arc::clone(&shared)),
                wake,
            );
            elector = Some(tokio::spawn(e.run(async move {
                let _ = writes_over.await;
            })));
        }
    }
    let source = Source::new(location, Some(ctx.object_client()));
    let sender = settings.events_bus.as_deref().map(|bus| {
        info!(bus, "audit events also go to the EventBridge bus");
        bus::EventSender::start(ctx.event_bus(bus), shared.metrics.events_total.clone())
    });
    let auditor = audit::Auditor::new(settings.replica_id.clone(), sender);
    let loop_settings = LoopSettings {
        fence,
        dry_run: settings.dry_run,
        max_concurrent_targets: settings.max_concurrent_targets,
        config_poll: settings.config_poll,
        rollout_poll: settings.rollout_poll,
        ceilings: settings.ceilings,
        emf: settings.metrics_emf.clone().and_then(|s| {
            info!(namespace = %s.namespace, "metrics also go to stdout in CloudWatch Embedded Metric Format");
            emf::Emf::start(s, settings.lease.is_some(), shared.metrics.emf_lines_total.clone())
                .map_err(|e| warn!(error = %e, "cannot start the EMF writer; no EMF metrics"))
                .ok()
        }),
    };
    let abandoned = run_loop(
        Arc::clone(&shared),
        ctx,
        source,
        rx,
        loop_settings,
        auditor,
        shutdown,
    )
    .await;
    // A pass abandoned with a write in flight: that write may still land, for up to the
    // operation timeout (the fence's margin). Releasing now would let the other replica
    // write meanwhile; the lease is released once it cannot land any more.
    if abandoned && settings.lease.is_some() {
        warn!(
            wait = ?calls.operation_timeout,
            "a write may still be in flight: releasing the lease once it can no longer land"
        );
        tokio::time::sleep(calls.operation_timeout).await;
    }
    // Nothing writes any more: the elector may release the lease.
    let _ = done.send(());
    if let Some(elector) = elector {
        if tokio::time::timeout(RELEASE_GRACE, elector).await.is_err() {
            warn!("the lease was not released within {RELEASE_GRACE:?}; it expires by itself");
        }
    }

    let _ = stop_http.send(());
    server.await.map_err(DaemonError::Serve)
}

/// How long shutdown waits for the lease's release.
pub const RELEASE_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// The SDK app name of a replica: its user agent carries `app/guardduty-ecs-controller-<id>`.
pub fn app_name(replica_id: &str) -> String {
    format!("guardduty-ecs-controller-{replica_id}")
}

/// Under a lease every AWS call of the engine ends within half the lease duration (see
/// `gec_engine::fence`): a longer `--aws-operation-timeout` (or attempt timeout) is
/// lowered to it.
pub fn leased_calls(
    calls: gec_aws::CallSettings,
    lease: &leader::LeaseSettings,
) -> gec_aws::CallSettings {
    let max = lease.max_call();
    let operation_timeout = calls.operation_timeout.min(max);
    gec_aws::CallSettings {
        operation_timeout,
        attempt_timeout: calls.attempt_timeout.min(operation_timeout),
        ..calls
    }
}

/// Pending connections the kernel queues before the accept loop takes them (capped by
/// `net.core.somaxconn`, 4096 on current Linux). tokio's `TcpListener::bind` asks for
/// 1024: when a client floods connects (a slowloris that reopens every socket the
/// server closes), a full queue drops the SYN of a health check, which then waits for the
/// 1 s SYN retransmission. A queue larger than the connection cap keeps that from
/// happening for floods of a few thousand sockets.
const LISTEN_BACKLOG: u32 = 4096;

/// Binds `addr` with SO_REUSEADDR (as `TcpListener::bind` does) and [`LISTEN_BACKLOG`].
fn listen(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

#[cfg(unix)]
fn spawn_hangup(tx: mpsc::UnboundedSender<Trigger>) {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::hangup()) {
        Ok(mut hup) => {
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    info!("SIGHUP: reconciling now");
                    if tx.send(Trigger::Hangup).is_err() {
                        break;
                    }
                }
            });
        }
        Err(e) => warn!(error = %e, "cannot listen for SIGHUP"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn under_a_lease_every_call_ends_within_half_of_it() {
        let lease = leader::LeaseSettings {
            table: "t".into(),
            key: "k".into(),
            replica_id: "a".into(),
            lease_duration: Duration::from_secs(20),
        };
        let calls = leased_calls(gec_aws::CallSettings::default(), &lease);
        assert_eq!(calls.operation_timeout, Duration::from_secs(10));
        assert_eq!(calls.attempt_timeout, Duration::from_secs(10));
        let short = gec_aws::CallSettings {
            attempt_timeout: Duration::from_secs(2),
            operation_timeout: Duration::from_secs(5),
            ..gec_aws::CallSettings::default()
        };
        assert_eq!(leased_calls(short, &lease), short, "shorter ones stay");
        let tight = leader::LeaseSettings {
            lease_duration: Duration::from_secs(4),
            ..lease
        };
        let calls = leased_calls(short, &tight);
        assert_eq!(calls.operation_timeout, Duration::from_secs(2));
        assert!(calls.attempt_timeout <= calls.operation_timeout);
        assert_eq!(tight.heartbeat(), Duration::from_secs(1));
    }
}

#[cfg(not(unix))]
fn spawn_hangup(_tx: mpsc::UnboundedSender<Trigger>) {}
