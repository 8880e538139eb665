//! Command-line arguments. Every flag also reads a `GEC_*` environment variable.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use gec_model::plan::Ceilings;

/// Keeps Amazon GuardDuty ECS Runtime Monitoring for Fargate as a desired-state file says.
#[derive(Debug, Parser)]
#[command(name = "guardduty-ecs-controller", version = env!("GEC_VERSION"), about)]
pub struct Cli {
    /// Log format on stderr: json by default when stdout is not a terminal.
    #[arg(long, global = true, env = "GEC_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Attempts per AWS call, the first included (standard retry mode, jittered backoff).
    #[arg(long, global = true, env = "GEC_AWS_MAX_ATTEMPTS", default_value_t = gec_aws::MAX_ATTEMPTS,
          value_parser = clap::value_parser!(u32).range(1..=10))]
    pub aws_max_attempts: u32,
    /// Time limit of one AWS call attempt (e.g. 10s; 1s to 5m).
    #[arg(long, global = true, env = "GEC_AWS_ATTEMPT_TIMEOUT", default_value = "10s",
          value_parser = duration_between(SECOND, 5 * MINUTE))]
    pub aws_attempt_timeout: Duration,
    /// Time limit of one AWS call, retries included (e.g. 40s; at least the attempt
    /// timeout, at most 1h).
    #[arg(long, global = true, env = "GEC_AWS_OPERATION_TIMEOUT", default_value = "40s",
          value_parser = duration_between(SECOND, HOUR))]
    pub aws_operation_timeout: Duration,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Parses the command line, then checks what one flag alone cannot:
    /// `--aws-operation-timeout` must leave room for one attempt. Never exits: a usage
    /// error is returned, so that `main` can give it exit code 1 instead of clap's 2
    /// (which means "changes pending" here).
    ///
    /// # Errors
    /// The usage error, or the `--help` / `--version` text (`exit_code() == 0`).
    pub fn parse_checked() -> Result<Self, clap::Error> {
        let cli = Cli::try_parse()?;
        cli.check()?;
        Ok(cli)
    }

    /// The checks across flags.
    ///
    /// # Errors
    /// A usage error naming the flags that contradict each other.
    pub fn check(&self) -> Result<(), clap::Error> {
        if self.aws_operation_timeout < self.aws_attempt_timeout {
            return Err(Cli::command().error(
                clap::error::ErrorKind::ArgumentConflict,
                format!(
                    "--aws-operation-timeout ({:?}) must be at least --aws-attempt-timeout ({:?})",
                    self.aws_operation_timeout, self.aws_attempt_timeout
                ),
            ));
        }
        Ok(())
    }

    /// The AWS call settings from the flags.
    pub fn calls(&self) -> gec_aws::CallSettings {
        gec_aws::CallSettings {
            max_attempts: self.aws_max_attempts,
            attempt_timeout: self.aws_attempt_timeout,
            operation_timeout: self.aws_operation_timeout,
        }
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse and validate desired-state files; no AWS call. Exit 0 valid, 1 invalid.
    Validate {
        /// Files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Output format on stdout: `text` (each mistake with its line and a caret, on
        /// stderr) or `json` (one document for all files; `schema validate` describes it).
        #[arg(long, value_enum, default_value = "text")]
        output: ValidateOutput,
    },
    /// Print a JSON Schema: of the desired-state file (the default) or of a JSON output.
    /// The same schemas are checked in under schemas/.
    Schema {
        /// Which document.
        #[arg(value_enum, default_value_t = SchemaKind::Desired)]
        of: SchemaKind,
    },
    /// Observe and plan; writes nothing. Exit 0 no changes, 2 changes pending, 1 error.
    Plan(PlanCommand),
    /// Observe, plan and apply once. Exit 0 converged, 1 error or refused, 3 some actions
    /// failed, 4 another replica holds the lease (`--lease-table`).
    Apply(ApplyArgs),
    /// Per-cluster table: desired and observed tag, coverage, GuardDuty's coverage status,
    /// services and tasks without the agent. Writes nothing. Exit 0, 1 on error.
    Status(StatusArgs),
    /// Run as a daemon: reconcile on a timer and on file changes, serve metrics and health.
    /// Exit 0 after SIGTERM or SIGINT.
    Run(RunArgs),
    /// Print a shell completion script to stdout, e.g. `completions bash >
    /// /etc/bash_completion.d/guardduty-ecs-controller`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) of the command and its subcommands to stdout, e.g.
    /// `man | man -l -`; with `--dir`, write one page per command there instead.
    Man {
        /// Write `guardduty-ecs-controller.1` and `guardduty-ecs-controller-<command>.1`
        /// into this directory.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// GET a URL; exit 0 on HTTP 200, 1 otherwise (the container health check: the
    /// runtime image has no curl).
    Probe {
        /// For example http://127.0.0.1:9090/healthz.
        url: String,
    },
}

/// The documents `schema` describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemaKind {
    /// The desired-state file.
    Desired,
    /// `plan --output json`.
    Plan,
    /// `apply --output json`.
    Apply,
    /// `status --output json`.
    Status,
    /// The daemon's `/status` body.
    DaemonStatus,
    /// The `detail` of the EventBridge events (`--events-bus`), and the audit log records.
    Event,
    /// `validate --output json`.
    Validate,
}

/// Output formats of `validate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ValidateOutput {
    /// For people: each mistake with its line and a caret under it.
    Text,
    /// One JSON document: `{"files": [{"file", "valid", "errors"}]}`.
    Json,
}

/// Flags of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The desired-state file (watched) or `s3://bucket/key` (polled); a broken one never
    /// replaces the last good one.
    #[arg(long, env = "GEC_CONFIG")]
    pub config: String,
    /// How often an `s3://` desired state is polled (a conditional GET on its ETag; 1s to 1h).
    #[arg(long, env = "GEC_CONFIG_POLL", default_value = "30s",
          value_parser = duration_between(SECOND, HOUR))]
    pub config_poll: Duration,
    /// Address for /metrics, /healthz, /readyz and /status. Loopback by default; a
    /// container passes 0.0.0.0:9090 (the deploy kit does).
    #[arg(long, env = "GEC_LISTEN", default_value = "127.0.0.1:9090")]
    pub listen: std::net::SocketAddr,
    /// HTTP connections open at once; at the cap a new one closes the longest-idle one.
    /// 1 to 65536; lowered to half the descriptor limit if above it.
    #[arg(long, env = "GEC_HTTP_MAX_CONNECTIONS", default_value_t = gec_daemon::serve::DEFAULT_MAX_CONNECTIONS, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=65_536))]
    pub http_max_connections: usize,
    /// A file holding the bearer token /status, POST /reconcile and POST /conflicts/reset
    /// require (at most 4 KiB; the env GEC_STATUS_TOKEN may give the token itself
    /// instead). /metrics, /healthz and /readyz stay open.
    #[arg(long, env = "GEC_STATUS_TOKEN_FILE")]
    pub status_token_file: Option<PathBuf>,
    /// Plan every pass and write nothing; metrics still report drift.
    #[arg(long, env = "GEC_DRY_RUN", value_parser = clap::builder::BoolishValueParser::new())]
    pub dry_run: bool,
    /// POST /reconcile asks for a pass now at most this often (1s to 1h); requests while
    /// an asked-for pass has not started join it, others in between get HTTP 429.
    #[arg(long, env = "GEC_RECONCILE_MIN_INTERVAL", default_value = "10s",
          value_parser = duration_between(SECOND, HOUR))]
    pub reconcile_min_interval: Duration,
    /// Targets reconciled at once (1 to 256).
    #[arg(long, env = "GEC_MAX_CONCURRENT_TARGETS", default_value_t = gec_engine::DEFAULT_MAX_CONCURRENT_TARGETS,
          value_parser = concurrent_targets())]
    pub max_concurrent_targets: usize,
    /// While redeploys roll (waitForSteadyState), passes come this often instead of every
    /// reconcile.interval (1s to 1h).
    #[arg(long, env = "GEC_ROLLOUT_POLL", default_value = "15s",
          value_parser = duration_between(SECOND, HOUR))]
    pub rollout_poll: Duration,
    /// Ceilings of the safety limits.
    #[command(flatten)]
    pub ceilings: CeilingArgs,
    /// Where audit events go besides the log.
    #[command(flatten)]
    pub events: EventsArgs,
    /// Leader election between replicas on a DynamoDB lease.
    #[command(flatten)]
    pub lease: LeaseArgs,
    /// CloudWatch metrics through the log stream.
    #[command(flatten)]
    pub emf: EmfArgs,
}

/// Flags of `run` for CloudWatch Embedded Metric Format.
#[derive(Debug, Args)]
pub struct EmfArgs {
    /// After each pass, write the key metrics (per target and fleet-wide) to stdout as
    /// CloudWatch Embedded Metric Format lines; on ECS the awslogs driver ships them and
    /// CloudWatch extracts the metrics. The logs stay on stderr.
    #[arg(long, env = "GEC_METRICS_EMF", value_parser = clap::builder::BoolishValueParser::new())]
    pub metrics_emf: bool,
    /// The CloudWatch namespace of --metrics-emf (1 to 255 ASCII letters, digits, spaces
    /// and . - _ / # :; not AWS/...).
    #[arg(long, env = "GEC_METRICS_EMF_NAMESPACE", default_value = gec_daemon::emf::DEFAULT_NAMESPACE,
          value_parser = emf_namespace)]
    pub metrics_emf_namespace: String,
}

impl EmfArgs {
    /// The EMF settings, when `--metrics-emf` is given.
    pub fn settings(&self) -> Option<gec_daemon::emf::EmfSettings> {
        self.metrics_emf.then(|| gec_daemon::emf::EmfSettings {
            namespace: self.metrics_emf_namespace.clone(),
        })
    }
}

fn emf_namespace(s: &str) -> Result<String, String> {
    gec_daemon::emf::check_namespace(s).map(|()| s.to_owned())
}

/// Flags of `run` and `apply` for audit events.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Also put every write and incident as an event on this EventBridge bus (name or
    /// ARN). Off by default; a failing bus never blocks or fails reconciliation.
    #[arg(long, env = "GEC_EVENTS_BUS", value_parser = event_bus_name)]
    pub events_bus: Option<String>,
}

/// An event bus name or ARN as PutEvents takes it (botocore's `NonPartnerEventBusNameOrArn`:
/// 1 to 1600 characters, `(arn:aws[\w-]*:events:<region>:<account>:event-bus/)?` then
/// letters, digits, `.`, `-`, `_`).
fn event_bus_name(text: &str) -> Result<String, String> {
    let name = match text.strip_prefix("arn:") {
        Some(_) => {
            let parts: Vec<&str> = text.splitn(6, ':').collect();
            let resource = match parts.as_slice() {
                [_, partition, "events", region, account, resource]
                    if partition.starts_with("aws")
                        && !region.is_empty()
                        && account.len() == 12
                        && account.bytes().all(|b| b.is_ascii_digit()) =>
                {
                    resource.strip_prefix("event-bus/")
                }
                _ => None,
            };
            resource.ok_or(
                "not an event bus ARN (arn:aws:events:<region>:<account>:event-bus/<name>)",
            )?
        }
        None => text,
    };
    if text.len() > 1600 || name.is_empty() || name.len() > 256 {
        return Err("an event bus name has 1 to 256 characters".into());
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    {
        return Err("an event bus name has only letters, digits, '.', '-' and '_'".into());
    }
    Ok(text.to_owned())
}

/// Flags of the lease (`run`, `apply`): off unless `--lease-table` is given.
#[derive(Debug, Args)]
pub struct LeaseArgs {
    /// Run as one of several replicas: only the holder of a lease in this DynamoDB table
    /// (partition key `key`, a string) writes; the others observe, serve /metrics and
    /// /status, and take over when it stops renewing.
    #[arg(long, env = "GEC_LEASE_TABLE")]
    pub lease_table: Option<String>,
    /// The lease item's key, so that several fleets can share one table.
    #[arg(long, env = "GEC_LEASE_KEY", default_value = gec_aws::DEFAULT_LEASE_KEY,
          value_parser = lease_key)]
    pub lease_key: String,
    /// How long a holder's lease lasts without a renewal (2s to 10m). A replica takes over
    /// after seeing the same record version for this long; the leader renews every quarter
    /// of it, and every AWS call's operation timeout is capped at half of it.
    #[arg(long, env = "GEC_LEASE_DURATION", default_value = "20s",
          value_parser = duration_between(2 * SECOND, 10 * MINUTE))]
    pub lease_duration: Duration,
    /// This replica's id: the lease's owner while it leads, and its SDK app name
    /// (`app/guardduty-ecs-controller-<id>` in the user agent). 1 to 40 ASCII letters,
    /// digits, '.', '_', '-'. By default the host name and a random suffix.
    #[arg(long, env = "GEC_REPLICA_ID", value_parser = replica_id)]
    pub replica_id: Option<String>,
}

impl LeaseArgs {
    /// The lease settings, when `--lease-table` is given.
    pub fn settings(&self) -> Option<gec_daemon::leader::LeaseSettings> {
        let table = self.lease_table.clone()?;
        Some(gec_daemon::leader::LeaseSettings {
            table,
            key: self.lease_key.clone(),
            replica_id: self.replica_id.clone().unwrap_or_else(default_replica_id),
            lease_duration: self.lease_duration,
        })
    }
}

fn replica_id(s: &str) -> Result<String, String> {
    gec_daemon::leader::check_replica_id(s).map(|()| s.to_owned())
}

fn lease_key(s: &str) -> Result<String, String> {
    // DynamoDB: a string partition key value is 1 to 2048 bytes.
    if s.is_empty() || s.len() > 256 || s.chars().any(char::is_control) {
        return Err("a lease key has 1 to 256 bytes and no control characters".to_owned());
    }
    Ok(s.to_owned())
}

/// The host name (as far as it fits a replica id) and six random hex digits, so that two
/// processes on one host still differ.
fn default_replica_id() -> String {
    let host: String = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .unwrap_or_default()
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .take(gec_daemon::leader::MAX_REPLICA_ID - 7)
        .collect();
    let suffix = format!(
        "{:06x}",
        std::process::id()
            ^ (std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos()))
                & 0x00ff_ffff
    );
    if host.is_empty() {
        format!("replica-{suffix}")
    } else {
        format!("{host}-{suffix}")
    }
}

/// Flags of `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The desired-state file, or `s3://bucket/key`.
    #[arg(long, env = "GEC_CONFIG")]
    pub config: String,
    /// Output format on stdout.
    #[arg(long, env = "GEC_OUTPUT", default_value = "text", value_parser = text_or_json())]
    pub output: Output,
    /// Targets read at once (1 to 256).
    #[arg(long, env = "GEC_MAX_CONCURRENT_TARGETS", default_value_t = gec_engine::DEFAULT_MAX_CONCURRENT_TARGETS,
          value_parser = concurrent_targets())]
    pub max_concurrent_targets: usize,
    /// Ceilings of the safety limits.
    #[command(flatten)]
    pub ceilings: CeilingArgs,
    /// Read-only credentials for every target.
    #[command(flatten)]
    pub read_only: ReadOnlyArgs,
}

/// `plan`: the flags it shares with `apply`, and the read-only role (never `apply`'s).
#[derive(Debug, Args)]
pub struct PlanCommand {
    /// Flags shared with `apply`.
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Output format on stdout (markdown: a pull-request comment).
    #[arg(long, env = "GEC_OUTPUT", value_enum, default_value = "text")]
    pub output: Output,
    /// Read-only credentials for every target.
    #[command(flatten)]
    pub read_only: ReadOnlyArgs,
}

/// `--read-only-role` of `plan` and `status`.
#[derive(Debug, Args)]
pub struct ReadOnlyArgs {
    /// Assume this role name instead of every role the desired state names: a target's
    /// roleArn (or the one its roleName builds), the organization's administrator role and
    /// memberRoleName all become arn:<partition>:iam::<account>:role/<NAME> (external ids
    /// are kept). Targets without a role stay on the caller's credentials. For CI, with
    /// deploy/iam-policy-readonly.json.
    #[arg(long, env = "GEC_READ_ONLY_ROLE", value_name = "NAME", value_parser = read_only_role)]
    pub read_only_role: Option<String>,
}

fn read_only_role(name: &str) -> Result<String, String> {
    gec_model::desired::check_role_name(name).map(|()| name.to_owned())
}

/// Flags shared by `plan` and `apply`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The desired-state file, or `s3://bucket/key`.
    #[arg(long, env = "GEC_CONFIG")]
    pub config: String,
    /// Do not refuse a plan over a safety limit.
    #[arg(long, env = "GEC_ALLOW_MASS_CHANGE", value_parser = clap::builder::BoolishValueParser::new())]
    pub allow_mass_change: bool,
    /// Targets reconciled at once (1 to 256).
    #[arg(long, env = "GEC_MAX_CONCURRENT_TARGETS", default_value_t = gec_engine::DEFAULT_MAX_CONCURRENT_TARGETS,
          value_parser = concurrent_targets())]
    pub max_concurrent_targets: usize,
    /// Ceilings of the safety limits.
    #[command(flatten)]
    pub ceilings: CeilingArgs,
}

/// Ceilings of the desired state's `safety` limits, set where the controller runs: the
/// file may lower a limit, never raise it past its ceiling (a higher value is clamped,
/// with a warning). The defaults are the file's own defaults.
#[derive(Debug, Args)]
pub struct CeilingArgs {
    /// Most tag changes one pass may make over all targets, whatever
    /// safety.maxClusterChangesPerCycle says (0 to 1000000).
    #[arg(long, env = "GEC_MAX_CLUSTER_CHANGES_CEILING", default_value_t = Ceilings::default().max_cluster_changes,
          value_parser = clap::value_parser!(u32).range(0..=MAX_CLUSTER_CHANGES_CEILING))]
    pub max_cluster_changes_ceiling: u32,
    /// Largest share of covered clusters one pass may turn coverage off for, whatever
    /// safety.maxCoverageLossFraction says (0 to 1).
    #[arg(long, env = "GEC_MAX_COVERAGE_LOSS_CEILING", default_value_t = Ceilings::default().max_coverage_loss,
          value_parser = parse_fraction)]
    pub max_coverage_loss_ceiling: f64,
}

/// The largest `--max-cluster-changes-ceiling`: far above any fleet's tag changes per
/// pass, so the bound only catches typos, never a real fleet.
const MAX_CLUSTER_CHANGES_CEILING: i64 = 1_000_000;

impl CeilingArgs {
    /// The ceilings from the flags.
    pub fn ceilings(&self) -> Ceilings {
        Ceilings {
            max_cluster_changes: self.max_cluster_changes_ceiling,
            max_coverage_loss: self.max_coverage_loss_ceiling,
        }
    }
}

/// Flags of `apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Flags shared with `plan`.
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Output format on stdout.
    #[arg(long, env = "GEC_OUTPUT", default_value = "text", value_parser = text_or_json())]
    pub output: Output,
    /// Give up after this long (e.g. 90s, 15m, 1h; 1s to 24h), waiting for the redeploys
    /// it started included.
    #[arg(long, env = "GEC_TIMEOUT", default_value = "15m",
          value_parser = duration_between(SECOND, DAY))]
    pub timeout: Duration,
    /// How often rollouts are checked while apply waits for them (1s to 1h).
    #[arg(long, env = "GEC_ROLLOUT_POLL", default_value = "5s",
          value_parser = duration_between(SECOND, HOUR))]
    pub rollout_poll: Duration,
    /// Where audit events go besides the log.
    #[command(flatten)]
    pub events: EventsArgs,
    /// The daemons' lease: with `--lease-table`, apply writes only while it holds the
    /// lease itself (taken when free, or after its holder stopped renewing for a lease
    /// duration; released at exit), and exits 4 while a daemon holds and renews it.
    #[command(flatten)]
    pub lease: LeaseArgs,
    /// Write even while another replica holds the lease (`--lease-table` is then ignored).
    #[arg(long, env = "GEC_IGNORE_LEASE", value_parser = clap::builder::BoolishValueParser::new())]
    pub ignore_lease: bool,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// For people, like `terraform plan`.
    Text,
    /// The stable plan JSON of DESIGN §4.
    Json,
    /// A pull-request comment (`plan` only): a summary, then a collapsible diff per
    /// target.
    Markdown,
}

/// `--output` of `apply` and `status`: text or json (Markdown is a plan's pull-request
/// comment), so help, completions and the man page offer only what they take.
fn text_or_json() -> impl clap::builder::TypedValueParser<Value = Output> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(["text", "json"])
        .try_map(|s| <Output as ValueEnum>::from_str(&s, false))
}

/// Log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    gec_model::desired::DurationSpec::parse(text).map(|d| d.get())
}

fn parse_fraction(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        _ => Err(format!("{text:?} is not a fraction between 0 and 1")),
    }
}

const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// A duration flag between `min` and `max`, both included. A value outside is a usage
/// error, never clamped: a zero poll would spin, a poll of a year would never come.
fn duration_between(
    min: Duration,
    max: Duration,
) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync + 'static {
    move |text| {
        let d = parse_duration(text)?;
        if d < min {
            Err(format!("must be at least {}", human(min)))
        } else if d > max {
            Err(format!("must be at most {}", human(max)))
        } else {
            Ok(d)
        }
    }
}

/// Bounds of `--max-concurrent-targets`: at least one, and few enough that the open
/// connections and in-flight memory stay bounded.
fn concurrent_targets() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(1..=256)
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        _ if s % 3600 == 0 => format!("{}h", s / 3600),
        _ if s % 60 == 0 => format!("{}m", s / 60),
        _ => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        let cli = Cli::try_parse_from(["guardduty-ecs-controller"].iter().chain(args).copied())?;
        cli.check()?;
        Ok(cli)
    }

    #[test]
    fn knobs_outside_their_bounds_are_usage_errors_not_clamped() {
        // (label, arguments, what the error says)
        let rows: [(&str, &[&str], &str); 11] = [
            (
                "zero rollout poll",
                &["run", "--config", "f", "--rollout-poll", "0s"],
                "at least 1s",
            ),
            (
                "sub-second config poll",
                &["run", "--config", "f", "--config-poll", "0s"],
                "at least 1s",
            ),
            (
                "config poll of a week",
                &["run", "--config", "f", "--config-poll", "168h"],
                "at most 1h",
            ),
            (
                "apply's rollout poll",
                &["apply", "--config", "f", "--rollout-poll", "0s"],
                "at least 1s",
            ),
            (
                "apply timeout zero",
                &["apply", "--config", "f", "--timeout", "0s"],
                "at least 1s",
            ),
            (
                "apply timeout of a week",
                &["apply", "--config", "f", "--timeout", "168h"],
                "at most 24h",
            ),
            (
                "attempt timeout zero",
                &["--aws-attempt-timeout", "0s", "schema"],
                "at least 1s",
            ),
            (
                "no attempts",
                &["--aws-max-attempts", "0", "schema"],
                "0 is not in 1..=10",
            ),
            (
                "a hundred attempts",
                &["--aws-max-attempts", "100", "schema"],
                "100 is not in 1..=10",
            ),
            (
                "no targets at once",
                &["plan", "--config", "f", "--max-concurrent-targets", "0"],
                "0 is not in 1..=256",
            ),
            (
                "an operation shorter than its attempt",
                &[
                    "--aws-attempt-timeout",
                    "20s",
                    "--aws-operation-timeout",
                    "10s",
                    "schema",
                ],
                "--aws-operation-timeout (10s) must be at least --aws-attempt-timeout (20s)",
            ),
        ];
        for (label, args, says) in rows {
            match parse(args) {
                Ok(_) => panic!("{label}: accepted"),
                Err(e) => assert!(e.to_string().contains(says), "{label}: {e}"),
            }
        }
    }

    #[test]
    fn the_defaults_and_the_bounds_themselves_are_accepted() {
        let cli = parse(&["run", "--config", "f"]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cli.calls(), gec_aws::CallSettings::default());
        for args in [
            &[
                "run",
                "--config",
                "f",
                "--rollout-poll",
                "1s",
                "--config-poll",
                "1h",
            ][..],
            &[
                "apply",
                "--config",
                "f",
                "--timeout",
                "24h",
                "--max-concurrent-targets",
                "256",
            ],
            &[
                "--aws-max-attempts",
                "1",
                "--aws-attempt-timeout",
                "5m",
                "--aws-operation-timeout",
                "5m",
                "schema",
            ],
        ] {
            assert!(parse(args).is_ok(), "{args:?}");
        }
    }

    #[test]
    fn an_event_bus_is_a_name_or_an_event_bus_arn() {
        let ok = [
            "audit",
            "default",
            "team.audit-bus_1",
            "arn:aws:events:us-east-1:111122223333:event-bus/audit",
        ];
        for name in ok {
            assert_eq!(event_bus_name(name).as_deref(), Ok(name), "{name}");
        }
        // (label, value, what the error says)
        let bad = [
            ("empty", "", "1 to 256"),
            ("too long", &"a".repeat(257), "1 to 256"),
            ("a space", "my bus", "only letters"),
            ("a slash in a name", "a/b", "only letters"),
            (
                "another service",
                "arn:aws:sqs:us-east-1:111122223333:q",
                "not an event bus ARN",
            ),
            (
                "short account",
                "arn:aws:events:us-east-1:1:event-bus/a",
                "not an event bus ARN",
            ),
        ];
        for (label, value, says) in bad {
            let err = event_bus_name(value).expect_err(label);
            assert!(err.contains(says), "{label}: {err}");
        }
        assert!(parse(&["apply", "--config", "f", "--events-bus", "my bus"]).is_err());
    }
}
