//! A running `guardduty-ecs-controller run` for end-to-end tests.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{http, Sandbox};

/// How long one request to the daemon may take.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// The daemon process, killed when dropped; its stderr (JSON logs) is kept.
pub struct Daemon {
    child: Child,
    pub addr: String,
    logs: Arc<Mutex<Vec<String>>>,
    /// Its stdout lines (`--metrics-emf`).
    stdout: Arc<Mutex<Vec<String>>>,
}

impl Daemon {
    /// Starts the daemon against the sandbox and waits until it listens.
    pub fn start(sandbox: &Sandbox, config: &Path, extra: &[&str]) -> Daemon {
        Daemon::start_with_config(sandbox, config.to_str().expect("UTF-8 path"), extra)
    }

    /// [`Daemon::start`] with any `--config` value (a path or `s3://bucket/key`).
    pub fn start_with_config(sandbox: &Sandbox, config: &str, extra: &[&str]) -> Daemon {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_guardduty-ecs-controller"));
        cmd.args(["--log-format", "json", "run", "--config", config])
            .args(["--listen", "127.0.0.1:0"])
            .args(extra);
        super::hermetic_env(
            &mut cmd,
            &[
                ("AWS_ENDPOINT_URL", sandbox.url.as_str()),
                ("RUST_LOG", "info"),
            ],
        );
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the daemon");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().expect("daemon stdout");
        let out_sink = Arc::clone(&stdout);
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                out_sink.lock().unwrap().push(line);
            }
        });
        let stderr = child.stderr.take().expect("daemon stderr");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = Arc::clone(&logs);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("serving /metrics") {
                    let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
                    let _ = tx.send(v["fields"]["addr"].as_str().unwrap_or_default().to_owned());
                }
                sink.lock().unwrap().push(line);
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the daemon logs its address");
        Daemon {
            child,
            addr,
            logs,
            stdout,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The URL of a path on the daemon's listener.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// GET a path: (status, body), or (0, why) when there was no answer within 10 s.
    pub fn get(&self, path: &str) -> (u16, String) {
        http::get(&self.url(path), HTTP_TIMEOUT).unwrap_or_else(|e| (0, e))
    }

    /// The value of one series of `/metrics` (exact name with labels as printed), 0 if absent.
    pub fn metric(&self, series: &str) -> f64 {
        let (_, body) = self.get("/metrics");
        body.lines()
            .find_map(|l| {
                l.strip_prefix(series)
                    .and_then(|rest| rest.strip_prefix(' '))
            })
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    }

    /// The sum of every series of a metric whose labels contain `label` (e.g. `outcome="error"`).
    pub fn metric_sum(&self, name: &str, label: &str) -> f64 {
        let (_, body) = self.get("/metrics");
        body.lines()
            .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(label))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Polls until `ready` holds or `limit` passes; returns whether it held.
    pub fn wait_for(&self, limit: Duration, mut ready: impl FnMut(&Daemon) -> bool) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if ready(self) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// The daemon's log so far.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    /// The lines the daemon wrote to stdout so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    /// Sends a signal (`TERM`, `HUP`, `KILL`).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name}");
    }

    /// Waits for the process to exit, up to `limit`: its exit code, or `None` if it did not.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status.code().unwrap_or(-1));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Replaces a file the way GitOps tools do: write a temporary file, then rename it over.
pub fn replace_file(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp-write");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}
