//! A hermetic harness for end-to-end tests: a private sandbox per test, the real binary,
//! and AWS state read back through the sandbox with plain SDK clients ([`Sandbox::aws`]).

pub mod aws;
pub mod daemon;
pub mod http;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use hyper::Method;
use serde_json::Value;

use aws::Aws;

/// How long a call of the sandbox's own API may take.
const SANDBOX_TIMEOUT: Duration = Duration::from_secs(60);

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One moto-based sandbox on 127.0.0.1, stopped when dropped.
pub struct Sandbox {
    child: Child,
    pub url: String,
    dir: tempfile::TempDir,
    /// [`Sandbox::aws`]'s readers, by region.
    aws: Mutex<BTreeMap<String, Aws>>,
}

impl Sandbox {
    /// Starts a sandbox on a free port and waits until it answers.
    pub fn start() -> Sandbox {
        let mut child = Command::new(root().join("sandbox/bin/gec-sandbox"))
            .args(["serve", "--port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the sandbox (sandbox/bin/gec-sandbox)");
        let stdout = child.stdout.take().expect("sandbox stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the sandbox URL");
        let url = line.trim().to_owned();
        assert!(
            url.starts_with("http://127.0.0.1:"),
            "sandbox printed {url:?}"
        );
        Sandbox {
            child,
            url,
            dir: tempfile::TempDir::new().expect("a temp dir"),
            aws: Mutex::default(),
        }
    }

    /// Seeds a fleet (sandbox fleet format) and returns the seed summary.
    pub fn seed(&self, fleet_yaml: &str) -> Value {
        let file = self.write("fleet.yaml", fleet_yaml);
        let out = Command::new(root().join("sandbox/bin/gec-sandbox"))
            .args(["seed", "--endpoint", &self.url])
            .arg(&file)
            .output()
            .expect("run sandbox seed");
        assert!(
            out.status.success(),
            "seed failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("seed prints JSON")
    }

    /// Writes a file into this test's temporary folder.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("write a test file");
        path
    }

    /// One call of the sandbox's own API (`/_sandbox/...`): the body of its 2xx answer.
    fn call(&self, method: Method, path: &str, body: String) -> String {
        let what = format!("{method} {path}");
        let url = format!("{}{path}", self.url);
        match http::request(method, &url, &[], body, SANDBOX_TIMEOUT) {
            Ok((status, body)) if (200..300).contains(&status) => body,
            Ok((status, body)) => panic!("{what}: status {status}: {body}"),
            Err(e) => panic!("{what}: {e}"),
        }
    }

    /// Every AWS request the sandbox received, in order.
    pub fn requests(&self) -> Vec<Value> {
        let body = self.call(Method::GET, "/_sandbox/requests", String::new());
        serde_json::from_str(&body).expect("request log is JSON")
    }

    /// `POST /_sandbox/<path>` with a JSON body (sandbox/README.md, control calls): the
    /// answer.
    pub fn control_post(&self, path: &str, body: Value) -> Value {
        let answer = self.call(Method::POST, &format!("/_sandbox/{path}"), body.to_string());
        serde_json::from_str(&answer).expect("a control call answers JSON")
    }

    /// Replaces the sandbox's fault rules (sandbox/README.md, "Fault injection").
    pub fn faults(&self, rules: Value) {
        self.call(Method::POST, "/_sandbox/faults", rules.to_string());
    }

    /// Replaces the sandbox's timing knobs (`POST /_sandbox/knobs`, sandbox/README.md).
    pub fn knobs(&self, knobs: Value) {
        self.call(Method::POST, "/_sandbox/knobs", knobs.to_string());
    }

    /// Replaces sandbox settings (`POST /_sandbox/config`, e.g. `{"rolloutSeconds": 1}`).
    pub fn config(&self, settings: Value) {
        self.call(Method::POST, "/_sandbox/config", settings.to_string());
    }

    /// Forgets all AWS state, the log and the fault rules.
    pub fn reset(&self) {
        self.call(Method::POST, "/_sandbox/reset", String::new());
    }

    /// Forgets the request log.
    pub fn clear_requests(&self) {
        self.call(Method::DELETE, "/_sandbox/requests", String::new());
    }

    /// UpdateService calls the sandbox received, per service name.
    pub fn update_service_calls(&self) -> BTreeMap<String, usize> {
        let mut calls = BTreeMap::new();
        for r in self.requests() {
            if r["operation"] == "UpdateService" {
                let service = r["params"]["service"].as_str().unwrap_or_default();
                let name = service.rsplit('/').next().unwrap_or_default().to_owned();
                *calls.entry(name).or_insert(0) += 1;
            }
        }
        calls
    }

    /// Operations of the logged requests that write, in order.
    pub fn writes(&self) -> Vec<Value> {
        const WRITES: &[&str] = &[
            "TagResources",
            "UntagResources",
            "UpdateDetector",
            "TagResource",
            "UntagResource",
        ];
        self.requests()
            .into_iter()
            .filter(|r| WRITES.contains(&r["operation"].as_str().unwrap_or_default()))
            .collect()
    }

    /// `apply --config CONFIG` polling rollouts every second, within `timeout`, with
    /// `extra` arguments.
    pub fn apply(&self, config: &str, timeout: &str, extra: &[&str]) -> Run {
        let mut args = vec![
            "apply",
            "--config",
            config,
            "--rollout-poll",
            "1s",
            "--timeout",
            timeout,
        ];
        args.extend(extra);
        self.controller(&args)
    }

    /// Runs the controller binary against this sandbox.
    pub fn controller(&self, args: &[&str]) -> Run {
        run_controller(args, &[("AWS_ENDPOINT_URL", self.url.as_str())])
    }

    /// SDK config for reading the sandbox directly (not through the controller).
    pub async fn sdk(&self, region: &str) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.url)
            .region(aws_config::Region::new(region.to_owned()))
            .credentials_provider(aws_sdk_ecs::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .load()
            .await
    }

    /// SDK config acting in `account` (AssumeRole of a reader role the controller never
    /// uses, so fault rules on the controller's roles do not hit it).
    pub async fn sdk_in(&self, account: &str, region: &str) -> aws_config::SdkConfig {
        let base = self.sdk(region).await;
        let provider = aws_config::sts::AssumeRoleProvider::builder(format!(
            "arn:aws:iam::{account}:role/test-reader"
        ))
        .session_name("e2e-test-reader")
        .region(aws_config::Region::new(region.to_owned()))
        .configure(&base)
        .build()
        .await;
        base.to_builder()
            .credentials_provider(aws_sdk_ecs::config::SharedCredentialsProvider::new(
                provider,
            ))
            .build()
    }

    /// The AWS reader of one region of this sandbox, its clients made once.
    pub async fn aws(&self, region: &str) -> Aws {
        if let Some(aws) = self.aws.lock().expect("AWS readers").get(region) {
            return aws.clone();
        }
        let aws = Aws::new(&self.sdk(region).await);
        self.aws
            .lock()
            .expect("AWS readers")
            .entry(region.to_owned())
            .or_insert(aws)
            .clone()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a run of the binary printed.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The stdout parsed as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{self}"))
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs the controller hermetically: no AWS settings from the developer's environment,
/// dummy credentials, and the given extra environment.
pub fn run_controller(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_guardduty-ecs-controller"));
    cmd.args(args).current_dir(root());
    hermetic_env(&mut cmd, env);
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("run the controller");
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// The secret key every controller run gets: it must never show in logs or output.
pub const SECRET_KEY: &str = "gec-test-secret-must-never-be-logged";

/// No AWS or controller settings from the developer's environment; dummy credentials.
pub fn hermetic_env(cmd: &mut Command, env: &[(&str, &str)]) {
    for (key, _) in std::env::vars() {
        if key.starts_with("AWS_") || key.starts_with("GEC_") || key == "RUST_LOG" {
            cmd.env_remove(key);
        }
    }
    cmd.env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    for (k, v) in env {
        cmd.env(k, v);
    }
}

/// Runs the controller with no endpoint at all (for commands that must not reach AWS, an
/// endpoint that nothing listens on catches any stray call).
pub fn run_offline(args: &[&str]) -> Run {
    run_controller(args, &[("AWS_ENDPOINT_URL", "http://127.0.0.1:9")])
}

/// A path inside the repository.
pub fn repo_path(rel: &str) -> PathBuf {
    root().join(rel)
}

/// Serializes the tests that use [`Sandbox::aws_env`]: the process environment is
/// global, and `AwsContext::from_env` reads it. The other tests do not depend on it:
/// every controller they start gets its AWS settings from [`hermetic_env`], and
/// [`Sandbox::sdk`] sets endpoint, region and credentials itself.
static AWS_ENV: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl Sandbox {
    /// Points this process's AWS environment at the sandbox (dummy credentials, nothing
    /// from the developer's environment), for an in-process `gec_aws::AwsContext::from_env`.
    /// Hold the guard for the whole test: tests that use it run one at a time.
    pub async fn aws_env(&self) -> tokio::sync::MutexGuard<'static, ()> {
        let guard = AWS_ENV.lock().await;
        for (key, _) in std::env::vars() {
            if key.starts_with("AWS_") {
                std::env::remove_var(key);
            }
        }
        for (key, value) in [
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_CONFIG_FILE", "/nonexistent"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_ENDPOINT_URL", self.url.as_str()),
        ] {
            std::env::set_var(key, value);
        }
        guard
    }

    /// How many logged requests had each operation.
    pub fn operation_counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for r in self.requests() {
            let op = r["operation"].as_str().unwrap_or_default().to_owned();
            *counts.entry(op).or_insert(0) += 1;
        }
        counts
    }
}
