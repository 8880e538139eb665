//! `guardduty-ecs-controller`: glue that turns arguments into settings, runs the command
//! and maps its result to an exit code. Only `main` exits.

// `print!`, `println!` and `eprintln!` that never panic. std's panic when the stream is closed
// (`plan | head`, a log collector gone): the command would die with exit 101 instead of
// its own exit code. A line written to a closed stream is lost; the exit code stands.
// Defined before the modules, so these shadow std's macros in all of them.
macro_rules! print {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}
macro_rules! println {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}
macro_rules! eprintln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod args;
mod extras;
mod markdown;
mod output;
mod validate;

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use args::{
    ApplyArgs, Cli, Command, LogFormat, Output, PlanArgs, PlanCommand, SchemaKind, StatusArgs,
};
use gec_engine::{ApplyRun, Driver, Mode, Progress, Round, Settings, TargetPass};
use gec_model::desired::ConfigErrors;
use gec_model::{DesiredState, PlanOptions};

/// Exit codes of DESIGN §4.
const EXIT_OK: u8 = 0;
const EXIT_ERROR: u8 = 1;
const EXIT_CHANGES_PENDING: u8 = 2;
const EXIT_PARTIAL: u8 = 3;
/// `apply --lease-table`: another replica holds the lease and renews it (nothing
/// written), or took it over during the run (writes from then on skipped).
const EXIT_LEASE_HELD: u8 = 4;

fn main() -> ExitCode {
    let cli = match Cli::parse_checked() {
        Ok(cli) => cli,
        // clap's own exit code for a usage error is 2, which means "changes pending" here
        // (DESIGN §4): a usage error is an error (1); --help and --version are 0.
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.exit_code() == 0 {
                EXIT_OK
            } else {
                EXIT_ERROR
            });
        }
    };
    // Audit records (`event` field) are always logged, also by the commands that log
    // only warnings otherwise.
    let default_filter = if matches!(cli.command, Command::Run(_)) {
        "info"
    } else {
        "warn,gec_daemon::audit=info"
    };
    init_logging(cli.log_format, default_filter);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let calls = cli.calls();
    match runtime.block_on(run(cli.command, calls)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

async fn run(command: Command, calls: gec_aws::CallSettings) -> anyhow::Result<u8> {
    match command {
        Command::Validate { files, output } => Ok(validate::run(&files, output)),
        Command::Schema { of } => {
            println!("{}", serde_json::to_string_pretty(&schema(of))?);
            Ok(EXIT_OK)
        }
        Command::Plan(args) => plan(args, calls).await,
        Command::Completions { shell } => extras::completions(shell),
        Command::Man { dir } => extras::man(dir.as_deref()),
        Command::Apply(args) => apply(args, calls).await,
        Command::Status(args) => status(args, calls).await,
        Command::Probe { url } => Ok(probe(&url).await),
        Command::Run(args) => {
            let lease = args.lease.settings();
            // The audit records name the replica: the lease's owner id (given or
            // generated), or `--replica-id` alone.
            let replica_id = lease
                .as_ref()
                .map(|l| l.replica_id.clone())
                .or_else(|| args.lease.replica_id.clone());
            let settings = gec_daemon::Settings {
                config: args.config,
                config_poll: args.config_poll,
                listen: args.listen,
                http: gec_daemon::serve::ServeSettings {
                    max_connections: args.http_max_connections,
                    ..Default::default()
                },
                status_token: gec_daemon::http::BearerToken::from_settings(
                    args.status_token_file.as_deref(),
                    std::env::var("GEC_STATUS_TOKEN").ok(),
                )?,
                dry_run: args.dry_run,
                max_concurrent_targets: args.max_concurrent_targets,
                rollout_poll: args.rollout_poll,
                calls,
                ceilings: args.ceilings.ceilings(),
                events_bus: args.events.events_bus,
                replica_id,
                lease,
                reconcile_min_interval: args.reconcile_min_interval,
                version: env!("GEC_VERSION").to_owned(),
                metrics_emf: args.emf.settings(),
            };
            gec_daemon::run(settings, terminated()).await?;
            Ok(EXIT_OK)
        }
    }
}

/// The JSON Schema `schema` prints.
fn schema(of: SchemaKind) -> serde_json::Value {
    match of {
        SchemaKind::Desired => gec_model::desired::json_schema(),
        SchemaKind::Plan => output::plan_schema(),
        SchemaKind::Apply => output::apply_schema(),
        SchemaKind::Status => output::status_schema(),
        SchemaKind::DaemonStatus => gec_daemon::status::status_schema(),
        SchemaKind::Event => gec_daemon::audit::event_schema(),
        SchemaKind::Validate => validate::schema(),
    }
}

/// Completes on SIGTERM (what ECS sends) or SIGINT. The handlers are installed when this
/// is called, not when the future is first polled: a SIGTERM that arrives while the daemon
/// still starts up (it serves /healthz before its AWS clients are ready) is then a
/// shutdown, not death by the signal's default action (exit 143).
fn terminated() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let handlers = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        );
        async move {
            match handlers {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
                        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// How long `probe` waits for the status line, connecting included.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// GETs an `http://` URL within [`PROBE_TIMEOUT`]: exit 0 on HTTP 200. No redirect is
/// followed, no proxy used, and the body is never read.
async fn probe(url: &str) -> u8 {
    match tokio::time::timeout(PROBE_TIMEOUT, probe_status(url)).await {
        Ok(Ok(status)) if status == hyper::StatusCode::OK => EXIT_OK,
        Ok(Ok(status)) => {
            eprintln!("{url}: HTTP {status}");
            EXIT_ERROR
        }
        Ok(Err(e)) => {
            eprintln!("{url}: {e:#}");
            EXIT_ERROR
        }
        Err(_) => {
            eprintln!("{url}: no answer within {PROBE_TIMEOUT:?}");
            EXIT_ERROR
        }
    }
}

async fn probe_status(url: &str) -> anyhow::Result<hyper::StatusCode> {
    use hyper_util::client::legacy::{connect::HttpConnector, Client};
    let uri: hyper::Uri = url.parse().context("not a URL")?;
    if uri.scheme() != Some(&hyper::http::uri::Scheme::HTTP) {
        anyhow::bail!("only http:// URLs are probed");
    }
    // HttpConnector refuses any scheme but http:// as well.
    let client: Client<HttpConnector, http_body_util::Empty<hyper::body::Bytes>> =
        Client::builder(hyper_util::rt::TokioExecutor::new()).build(HttpConnector::new());
    Ok(client.get(uri).await?.status())
}

/// The whole validate path: size, encoding, characters, depth, ... (`parse_bytes`).
fn parse(name: &str, bytes: &[u8]) -> anyhow::Result<DesiredState> {
    gec_model::desired::parse_bytes(name, bytes).map_err(|e: ConfigErrors| {
        let n = e.errors.len();
        anyhow::anyhow!(
            "{e}\n{}: {n} error{}, nothing applied",
            e.file,
            if n == 1 { "" } else { "s" }
        )
    })
}

/// Reads the desired state from a file or an `s3://bucket/key` object.
async fn load_from(config: &str, ctx: &gec_aws::AwsContext) -> anyhow::Result<DesiredState> {
    Ok(load_with_sha(config, ctx).await?.0)
}

/// [`load_from`], and the SHA-256 of the bytes read (the audit records'
/// `desiredStateSha256`).
async fn load_with_sha(
    config: &str,
    ctx: &gec_aws::AwsContext,
) -> anyhow::Result<(DesiredState, String)> {
    let Some(at) = gec_aws::ObjectLocation::parse(config) else {
        let bytes = gec_daemon::read::read_desired_file(Path::new(config))
            .with_context(|| config.to_owned())?;
        let desired = parse(&Path::new(config).display().to_string(), &bytes)?;
        return Ok((desired, gec_daemon::audit::sha256_hex(&bytes)));
    };
    let fetched = ctx
        .object_client()
        .fetch(&at, None)
        .await
        .with_context(|| at.to_string())?;
    match fetched {
        gec_aws::Fetched::Object { bytes, .. } => Ok((
            parse(&at.to_string(), &bytes)?,
            gec_daemon::audit::sha256_hex(&bytes),
        )),
        gec_aws::Fetched::NotModified => anyhow::bail!("{at}: unexpected 304 without an ETag"),
    }
}

fn settings(args: &PlanArgs, mode: Mode) -> Settings {
    Settings {
        plan: PlanOptions {
            allow_mass_change: args.allow_mass_change,
            ceilings: args.ceilings.ceilings(),
            ..PlanOptions::default()
        },
        max_concurrent_targets: args.max_concurrent_targets,
        ..Settings::new(mode)
    }
}

/// One round of the engine's loop over every target (`plan`, `status`): its passes, and
/// the `stopOnFailure` halt that round derived from AWS (a FAILED rollout, or a failed
/// CodeDeploy deployment).
///
/// With `read_only_role`, every role the desired state assumes is replaced by the role of
/// that name in the same account (`--read-only-role`).
async fn round(
    config: &str,
    settings: Settings,
    calls: gec_aws::CallSettings,
    read_only_role: Option<&str>,
) -> anyhow::Result<(Vec<TargetPass>, Option<gec_engine::rollout::Halt>)> {
    let ctx = gec_aws::AwsContext::from_env(calls).await?;
    let mut desired = load_from(config, &ctx).await?;
    if let Some(name) = read_only_role {
        desired = desired.with_read_only_role(name);
    }
    let desired = Arc::new(desired);
    let round = Round {
        desired,
        generation: 1,
        every_target: true,
    };
    let report = Driver::new(ctx, gec_engine::Context::default(), settings)
        .round(&round)
        .await;
    if report.passes.len() != report.targets.len() {
        anyhow::bail!("internal error: a target's pass did not finish; see the log");
    }
    Ok((report.passes, report.halted))
}

async fn plan(command: PlanCommand, calls: gec_aws::CallSettings) -> anyhow::Result<u8> {
    let args = command.plan;
    let (passes, _) = round(
        &args.config,
        settings(&args, Mode::Plan),
        calls,
        command.read_only.read_only_role.as_deref(),
    )
    .await?;
    match command.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&output::json(&passes))?),
        Output::Text => print!("{}", output::plan_text(&passes)),
        Output::Markdown => print!("{}", markdown::plan(&passes)),
    }
    let failed = passes.iter().any(|p| p.error.is_some());
    let refused = report_refusals(&passes);
    let changes: usize = passes
        .iter()
        .filter_map(|p| p.plan.as_ref())
        .map(|p| p.actions.len())
        .sum();
    Ok(if failed || refused {
        EXIT_ERROR
    } else if changes > 0 {
        EXIT_CHANGES_PENDING
    } else {
        EXIT_OK
    })
}

async fn status(args: StatusArgs, calls: gec_aws::CallSettings) -> anyhow::Result<u8> {
    let settings = Settings {
        max_concurrent_targets: args.max_concurrent_targets,
        plan: PlanOptions {
            ceilings: args.ceilings.ceilings(),
            ..PlanOptions::default()
        },
        ..Settings::new(Mode::Plan)
    };
    let (passes, halted) = round(
        &args.config,
        settings,
        calls,
        args.read_only.read_only_role.as_deref(),
    )
    .await?;
    match args.output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&output::status_json(&passes, halted.as_ref()))?
        ),
        Output::Text => print!("{}", output::status_text(&passes, halted.as_ref())),
        // Refused by `Cli::check` before any AWS call.
        Output::Markdown => anyhow::bail!("status has no --output markdown"),
    }
    Ok(if passes.iter().any(|p| p.error.is_some()) {
        EXIT_ERROR
    } else {
        EXIT_OK
    })
}

/// Prints each distinct refusal of these passes once (a fleet-wide refusal is in every
/// target's plan); returns whether any plan was refused.
fn report_refusals(passes: &[TargetPass]) -> bool {
    let mut seen = std::collections::HashSet::new();
    for r in passes
        .iter()
        .filter_map(|p| p.plan.as_ref()?.refused.as_ref())
    {
        if seen.insert(&r.reason) {
            eprintln!("error: plan refused by safety.{}: {}", r.limit, r.reason);
        }
    }
    !seen.is_empty()
}

/// Progress of the redeploys on a terminal (stderr), one line per event; nothing for a
/// finished round.
fn progress_line(p: Progress<'_>) -> Option<String> {
    Some(match p {
        Progress::Started(r) => format!(
            "{} {}",
            match r.outcome {
                gec_engine::Outcome::Success => "started ",
                _ => "FAILED  ",
            },
            output::action_line(&r.action)
        ),
        Progress::Settled(e) => format!("rollout  {}/{}: {}", e.cluster, e.service, e.status),
        Progress::Waiting { rolling, queued } => {
            format!("waiting  {rolling} rollouts in progress, {queued} redeploys queued")
        }
        Progress::Round(_) => return None,
    })
}

async fn apply(args: ApplyArgs, calls: gec_aws::CallSettings) -> anyhow::Result<u8> {
    let lease = match args.lease.settings() {
        Some(_) if args.ignore_lease => {
            tracing::warn!("--ignore-lease: writing whoever holds the lease");
            None
        }
        lease => lease,
    };
    let calls = match &lease {
        Some(l) => gec_daemon::leased_calls(calls, l),
        None => calls,
    };
    let mut ctx = gec_aws::AwsContext::from_env(calls).await?;
    if let Some(l) = &lease {
        ctx = ctx
            .with_app_name(&gec_daemon::app_name(&l.replica_id))
            .map_err(|e| anyhow::anyhow!("--replica-id: {e}"))?;
    }
    let (desired, sha256) = load_with_sha(&args.plan.config, &ctx).await?;
    let mut engine = gec_engine::Context::default();
    let replica_id = lease.as_ref().map(|l| l.replica_id.clone());
    let held = match lease {
        None => None,
        Some(l) => {
            match gec_daemon::leader::ApplyLease::acquire(&ctx, l, calls.operation_timeout).await {
                Ok(held) => {
                    engine.fence = held.fence.clone();
                    Some(held)
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    return Ok(match e {
                        gec_daemon::leader::LeaseRefused::Held { .. } => EXIT_LEASE_HELD,
                        gec_daemon::leader::LeaseRefused::Unavailable { .. } => EXIT_ERROR,
                    });
                }
            }
        }
    };
    // The adapter checks the lease's fence too, on every write request it sends.
    if let Some(held) = &held {
        ctx = ctx.with_fence(held.fence.clone());
    }
    let settings = Settings {
        rollout_poll: args.rollout_poll,
        ..settings(&args.plan, Mode::Apply)
    };
    let events = gec_daemon::bus::events_counter()?;
    let sender = args
        .events
        .events_bus
        .as_deref()
        .map(|bus| gec_daemon::bus::EventSender::start(ctx.event_bus(bus), events.clone()));
    let auditor = std::sync::Mutex::new(
        gec_daemon::audit::Auditor::new(replica_id, sender).with_fence(engine.fence.clone()),
    );
    let interactive = std::io::stderr().is_terminal();
    let progress = |p: Progress<'_>| {
        if let Progress::Round(report) = p {
            if let Ok(mut auditor) = auditor.lock() {
                auditor.round(report, Some(&sha256));
            }
        } else if interactive {
            if let Some(line) = progress_line(p) {
                eprintln!("{line}");
            }
        }
    };
    let work = gec_engine::apply_until_settled(
        ctx,
        Arc::new(desired),
        engine,
        settings,
        args.timeout,
        &progress,
    );
    // The run stops waiting at --timeout; this bounds a pass that hangs past it.
    let hard_stop = args.timeout + args.rollout_poll + std::time::Duration::from_secs(30);
    let run = tokio::time::timeout(hard_stop, work).await;
    // Nothing writes any more: a daemon may take the lease at once. Unless the run was cut
    // off at the hard stop with a write possibly in flight: that one may land for up to
    // the operation timeout (the fence's margin), so the release waits for it.
    let lapse = match held {
        Some(held) => {
            if run.is_err() {
                tokio::time::sleep(calls.operation_timeout).await;
            }
            held.release().await.err()
        }
        None => None,
    };
    // Queued audit events go out before the exit, a run that timed out included.
    let sender = auditor.lock().ok().and_then(|mut a| a.take_sender());
    if let Some(sender) = sender {
        let flushed = sender.flush(gec_daemon::bus::FLUSH_DEADLINE).await;
        // The daemon counts these in `events_total`; `apply` says them on stderr.
        let (sent, failed, dropped) = gec_daemon::bus::totals(&events);
        if flushed.bus_missing {
            let bus = args.events.events_bus.as_deref().unwrap_or_default();
            eprintln!("warning: the event bus {bus} does not exist: {failed} audit events were not sent (counted failed); create it or fix --events-bus");
        } else if failed + dropped > 0 {
            eprintln!("warning: {failed} audit events failed and {dropped} were dropped on the way to the event bus ({sent} sent); see the log");
        }
    }
    let run: ApplyRun = run
        .map_err(|_| anyhow::anyhow!("apply did not finish within --timeout {:?}", args.timeout))?;
    match args.output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&output::apply_json(&run))?
        ),
        Output::Text => {
            print!("{}", output::plan_text(&run.first));
            print!("{}", output::results_text(&run));
        }
        // Refused by `Cli::check` before any AWS call.
        Output::Markdown => anyhow::bail!("apply has no --output markdown"),
    }
    let refused = report_refusals(&run.first);
    let errored = run.last.iter().chain(&run.first).any(|p| p.error.is_some());
    let pending: usize = run
        .first
        .iter()
        .filter_map(|p| p.plan.as_ref())
        .map(|p| p.actions.len())
        .sum();
    let suspended = pending > 0 && run.first.iter().any(|p| p.suspended);
    if suspended {
        eprintln!("error: the desired state has suspend: true; changes are pending and nothing was written");
    }
    let remaining = output::remaining(&run);
    if run.timed_out {
        eprintln!(
            "error: --timeout {:?} passed with {} rollouts still in progress",
            args.timeout, run.still_rolling
        );
    }
    // A run that did not hold the lease throughout skipped the writes the fence stopped:
    // it is not done, whatever the passes say.
    if let Some(lapse) = lapse {
        eprintln!("error: {lapse}");
        return Ok(match lapse {
            gec_daemon::leader::LeaseLapse::Lost => EXIT_LEASE_HELD,
            gec_daemon::leader::LeaseLapse::Lapsed => EXIT_ERROR,
        });
    }
    Ok(if errored || refused || suspended {
        EXIT_ERROR
    } else if run.failures() > 0 || run.timed_out || remaining.unsettled > 0 {
        EXIT_PARTIAL
    } else {
        EXIT_OK
    })
}

fn init_logging(format: Option<LogFormat>, default_filter: &str) {
    use tracing_subscriber::EnvFilter;
    let mut filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    // Audit records are the record of what the controller wrote (issue 16: "always in the
    // JSON log"): a `RUST_LOG=warn` must not hide them.
    if let Ok(audit) = "gec_daemon::audit=info".parse() {
        filter = filter.add_directive(audit);
    }
    let json = match format {
        Some(LogFormat::Json) => true,
        Some(LogFormat::Text) => false,
        None => !std::io::stdout().is_terminal(),
    };
    // A log line that cannot be written (stderr closed: the log collector went away) is
    // lost; tracing-subscriber would otherwise report it with `eprintln!`, which panics
    // on that same closed stderr and takes the daemon down mid-pass.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .log_internal_errors(false);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[cfg(test)]
mod tests {
    use clap::ValueEnum;

    use super::{schema, SchemaKind};

    /// schemas/ holds what `schema` prints; `scripts/gen-schemas` rewrites it.
    #[test]
    fn the_checked_in_schemas_are_the_ones_the_code_prints() {
        for kind in SchemaKind::value_variants() {
            let name = kind
                .to_possible_value()
                .map(|v| v.get_name().to_owned())
                .unwrap_or_default();
            let path = format!("{}/schemas/{name}.schema.json", env!("CARGO_MANIFEST_DIR"));
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            let file: serde_json::Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
            assert!(
                file == schema(*kind),
                "{path} is not what `schema {name}` prints; run scripts/gen-schemas"
            );
        }
    }
}
