//! Command-line arguments. Every flag also reads a `GEC_*` environment variable.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Keeps Amazon GuardDuty ECS Runtime Monitoring for Fargate as a desired-state file says.
#[derive(Debug, Parser)]
#[command(name = "guardduty-ecs-controller", version, about)]
pub struct Cli {
    /// Log format on stderr: json by default when stdout is not a terminal.
    #[arg(long, global = true, env = "GEC_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Attempts per AWS call, the first included (standard retry mode, jittered backoff).
    #[arg(long, global = true, env = "GEC_AWS_MAX_ATTEMPTS", default_value_t = gec_aws::MAX_ATTEMPTS)]
    pub aws_max_attempts: u32,
    /// Time limit of one AWS call attempt (e.g. 10s).
    #[arg(long, global = true, env = "GEC_AWS_ATTEMPT_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub aws_attempt_timeout: Duration,
    /// Time limit of one AWS call, retries included (e.g. 40s).
    #[arg(long, global = true, env = "GEC_AWS_OPERATION_TIMEOUT", default_value = "40s", value_parser = parse_duration)]
    pub aws_operation_timeout: Duration,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
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
    },
    /// Print the JSON Schema of the desired-state file.
    Schema,
    /// Observe and plan; writes nothing. Exit 0 no changes, 2 changes pending, 1 error.
    Plan(PlanArgs),
    /// Observe, plan and apply once. Exit 0 converged, 1 error or refused, 3 some actions failed.
    Apply(ApplyArgs),
    /// Per-cluster table: desired and observed tag, coverage, GuardDuty's coverage status,
    /// services and tasks without the agent. Writes nothing. Exit 0, 1 on error.
    Status(StatusArgs),
    /// Run as a daemon: reconcile on a timer and on file changes, serve metrics and health.
    /// Exit 0 after SIGTERM or SIGINT.
    Run(RunArgs),
    /// GET a URL; exit 0 on HTTP 200, 1 otherwise (the container health check: the
    /// runtime image has no curl).
    Probe {
        /// For example http://127.0.0.1:9090/healthz.
        url: String,
    },
}

/// Flags of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The desired-state file (watched) or `s3://bucket/key` (polled); a broken one never
    /// replaces the last good one.
    #[arg(long, env = "GEC_CONFIG")]
    pub config: String,
    /// How often an `s3://` desired state is polled (a conditional GET on its ETag).
    #[arg(long, env = "GEC_CONFIG_POLL", default_value = "30s", value_parser = parse_duration)]
    pub config_poll: Duration,
    /// Address for /metrics, /healthz, /readyz and /status. Loopback by default; a
    /// container passes 0.0.0.0:9090 (the deploy kit does).
    #[arg(long, env = "GEC_LISTEN", default_value = "127.0.0.1:9090")]
    pub listen: std::net::SocketAddr,
    /// HTTP connections open at once; at the cap a new one closes the longest-idle one.
    /// Lowered to half the descriptor limit if above it.
    #[arg(long, env = "GEC_HTTP_MAX_CONNECTIONS", default_value_t = gec_daemon::serve::DEFAULT_MAX_CONNECTIONS, value_parser = parse_max_connections)]
    pub http_max_connections: usize,
    /// A file holding the bearer token /status requires (at most 4 KiB; the env
    /// GEC_STATUS_TOKEN may give the token itself instead). /metrics, /healthz and /readyz
    /// stay open.
    #[arg(long, env = "GEC_STATUS_TOKEN_FILE")]
    pub status_token_file: Option<PathBuf>,
    /// Plan every pass and write nothing; metrics still report drift.
    #[arg(long, env = "GEC_DRY_RUN")]
    pub dry_run: bool,
    /// Targets reconciled at once.
    #[arg(long, env = "GEC_MAX_CONCURRENT_TARGETS", default_value_t = gec_engine::DEFAULT_MAX_CONCURRENT_TARGETS)]
    pub max_concurrent_targets: usize,
    /// While redeploys roll (waitForSteadyState), passes come this often instead of every
    /// reconcile.interval.
    #[arg(long, env = "GEC_ROLLOUT_POLL", default_value = "15s", value_parser = parse_duration)]
    pub rollout_poll: Duration,
}

/// Flags of `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The desired-state file, or `s3://bucket/key`.
    #[arg(long, env = "GEC_CONFIG")]
    pub config: String,
    /// Output format on stdout.
    #[arg(long, env = "GEC_OUTPUT", value_enum, default_value = "text")]
    pub output: Output,
    /// Targets read at once.
    #[arg(long, env = "GEC_MAX_CONCURRENT_TARGETS", default_value_t = gec_engine::DEFAULT_MAX_CONCURRENT_TARGETS)]
    pub max_concurrent_targets: usize,
}

/// Flags shared by `plan` and `apply`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The desired-state file, or `s3://bucket/key`.
    #[arg(long, env = "GEC_CONFIG")]
    pub config: String,
    /// Output format on stdout.
    #[arg(long, env = "GEC_OUTPUT", value_enum, default_value = "text")]
    pub output: Output,
    /// Do not refuse a plan over a safety limit.
    #[arg(long, env = "GEC_ALLOW_MASS_CHANGE")]
    pub allow_mass_change: bool,
    /// Targets reconciled at once.
    #[arg(long, env = "GEC_MAX_CONCURRENT_TARGETS", default_value_t = gec_engine::DEFAULT_MAX_CONCURRENT_TARGETS)]
    pub max_concurrent_targets: usize,
}

/// Flags of `apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Flags shared with `plan`.
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Give up after this long (e.g. 90s, 15m, 1h), waiting for the redeploys it started
    /// included.
    #[arg(long, env = "GEC_TIMEOUT", default_value = "15m", value_parser = parse_duration)]
    pub timeout: Duration,
    /// How often rollouts are checked while apply waits for them.
    #[arg(long, env = "GEC_ROLLOUT_POLL", default_value = "5s", value_parser = parse_duration)]
    pub rollout_poll: Duration,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// For people, like `terraform plan`.
    Text,
    /// The stable plan JSON of DESIGN §4.
    Json,
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

fn parse_max_connections(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "{text:?} is not a number of connections of at least 1"
        )),
    }
}
