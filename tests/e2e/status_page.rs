//! End to end: the status page at `/` in a real browser (Debian's `chromium`, headless):
//! the DOM of a sandbox-backed daemon's page has a row per cluster with the right cells,
//! a screenshot is kept as `target/artifacts/status-page.png`, hostile names render as
//! text, and a broken desired-state file shows its error on the page.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hyper::body::Bytes;
use hyper::Method;

use crate::kit::daemon::{replace_file, Daemon, HTTP_TIMEOUT};
use crate::kit::{http, root, Sandbox};

/// How long one chromium run may take before it is killed (it takes about a second).
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(120);

/// `covered` is tagged and its task has the agent; `apps` is not covered and its
/// services' tasks lack it (`legacy` runs platform 1.3.0: it can never get it); `off` is
/// excluded.
const FLEET: &str = r#"
regions:
  us-east-1:
    detector: {runtimeMonitoring: ENABLED, ecsFargateAgentManagement: DISABLED}
    clusters:
      - name: covered
        tags: {GuardDutyManaged: "true"}
      - name: apps
      - name: "off"
    services:
      - {name: web, cluster: covered, desiredCount: 1}
      - {name: api, cluster: apps, desiredCount: 2}
      - {name: legacy, cluster: apps, desiredCount: 1, platformVersion: "1.3.0"}
"#;

const DESIRED: &str = "version: 1
targets: [{region: us-east-1}]
clusters:
  - {name: covered, guardDutyManaged: true}
  - {name: apps, guardDutyManaged: true}
  - {name: \"off\", guardDutyManaged: false}
redeploy: {settleTime: 0s}
reconcile: {interval: 1h}
";

/// What a chromium run printed.
struct Browser {
    stdout: String,
    stderr: String,
}

/// Runs `chromium --headless` with these arguments, a private profile and no network but
/// loopback; kills its process group if it does not finish within [`CHROMIUM_TIMEOUT`].
/// Fails the test when chromium is not installed: `scripts/test` installs it.
fn chromium(args: &[&str]) -> Browser {
    let found = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| dir.join("chromium").is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`chromium` is not on PATH: the status page's browser test needs Debian's chromium \
         (scripts/test installs it: apt-get install --no-install-recommends chromium)"
    );
    let profile = tempfile::TempDir::new().expect("a profile dir");
    let mut child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-dev-shm-usage",
            // Nothing leaves 127.0.0.1: names resolve to nothing, and any request that
            // is not to loopback goes to a closed port.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
            "--proxy-server=http://127.0.0.1:9",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .env("HOME", profile.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: a timeout kills the renderer and GPU processes too.
        .process_group(0)
        .spawn()
        .expect("start chromium");
    let reader = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let out = reader(Box::new(child.stdout.take().expect("stdout")));
    let err = reader(Box::new(child.stderr.take().expect("stderr")));
    let start = Instant::now();
    let pgid = i32::try_from(child.id()).expect("a pid");
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            // Its helpers (crashpad, zygote) may outlive it and hold the pipes open: end
            // the whole group before the readers are joined (ESRCH when none is left).
            // SAFETY: kill(2) on the process group this test started.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            break status;
        }
        if start.elapsed() > CHROMIUM_TIMEOUT {
            // SAFETY: kill(2) on the process group this test started.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            let _ = child.wait();
            panic!("chromium {args:?} did not finish within {CHROMIUM_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let browser = Browser {
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    };
    assert!(
        status.success(),
        "chromium {args:?}: {status}\n{}",
        tail(&browser.stderr)
    );
    browser
}

fn tail(text: &str) -> &str {
    let from = text.len().saturating_sub(3000);
    let from = (from..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    &text[from..]
}

/// The serialized `<tr class="cluster" ...>` of a cluster, up to its `</tr>`.
fn cluster_row<'a>(dom: &'a str, cluster: &str) -> &'a str {
    let open = format!("data-cluster=\"{cluster}\"");
    let at = dom
        .match_indices("<tr class=\"cluster\"")
        .map(|(i, _)| i)
        .find(|&i| {
            dom[i..]
                .split('>')
                .next()
                .is_some_and(|t| t.contains(&open))
        })
        .unwrap_or_else(|| panic!("no row of cluster {cluster} in the DOM:\n{dom}"));
    let end = dom[at..].find("</tr>").expect("the row ends") + at;
    &dom[at..end]
}

/// `target/artifacts` (under `CARGO_TARGET_DIR` when set), created.
fn artifacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|dir| {
            if dir.is_relative() {
                root().join(dir)
            } else {
                dir
            }
        })
        .unwrap_or_else(|| root().join("target"));
    let dir = target.join("artifacts");
    std::fs::create_dir_all(&dir).expect("create target/artifacts");
    dir
}

fn assert_png(path: &Path) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        bytes.len() > 8 && bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG ({} bytes)",
        path.display(),
        bytes.len()
    );
    // A blank page compresses to a few hundred bytes whatever its size; a page with tables
    // of text does not.
    assert!(
        bytes.len() > 10_000,
        "{} is {} bytes: a blank page?",
        path.display(),
        bytes.len()
    );
}

fn get(url: &str, headers: &[(&str, &str)]) -> http::Exchanged {
    http::exchange(Method::GET, url, headers, Bytes::new(), HTTP_TIMEOUT)
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Waits until `/status` (with `auth` headers) reports a finished pass.
fn wait_for_pass(daemon: &Daemon, auth: &[(&str, &str)]) {
    let passed = daemon.wait_for(Duration::from_secs(60), |d| {
        let (code, _, body) = get(&d.url("/status"), auth);
        code == 200
            && serde_json::from_str::<serde_json::Value>(&body)
                .map(|s| s["lastPass"]["finishedAt"].is_number())
                .unwrap_or(false)
    });
    assert!(passed, "no pass finished: {}", daemon.logs());
}

#[test]
fn chromium_shows_a_row_per_cluster_of_the_daemon_s_page_and_keeps_a_screenshot() {
    let sb = Sandbox::start();
    sb.seed(FLEET);
    let file = sb.write("desired.yaml", DESIRED);
    let daemon = Daemon::start(&sb, &file, &["--dry-run"]);
    wait_for_pass(&daemon, &[]);

    let (code, headers, body) = get(&daemon.url("/"), &[]);
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        header(&headers, "content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(
        header(&headers, "content-security-policy"),
        Some("default-src 'none'; style-src 'unsafe-inline'")
    );
    assert_eq!(header(&headers, "x-content-type-options"), Some("nosniff"));
    assert_eq!(header(&headers, "cache-control"), Some("no-store"));
    assert!(!body.contains("http-equiv=\"refresh\""));
    let (_, _, refreshing) = get(&daemon.url("/?refresh=15"), &[]);
    assert!(refreshing.contains("<meta http-equiv=\"refresh\" content=\"15\">"));
    let (_, _, ignored) = get(&daemon.url("/?refresh=1"), &[]);
    assert!(!ignored.contains("http-equiv=\"refresh\""), "below 5 s");

    let dom = chromium(&["--dump-dom", &daemon.url("/")]).stdout;
    assert!(
        dom.contains("<title>GuardDuty ECS controller: status</title>"),
        "{dom}"
    );
    assert!(dom.contains("data-result=\"success\""), "{dom}");
    assert!(dom.contains("dry run"), "{dom}");

    // (cluster, coverage, desired tag, observed tag, uncovered tasks)
    let expected = [
        ("covered", "covered", "true", "true", "0"),
        ("apps", "expected", "true", "(none)", "3"),
        ("off", "excluded", "false", "(none)", "—"),
    ];
    for (cluster, coverage, desired, observed, uncovered) in expected {
        let row = cluster_row(&dom, cluster);
        assert!(
            row.contains(&format!("data-coverage=\"{coverage}\"")),
            "{cluster}: {row}"
        );
        assert!(
            row.contains(&format!("<td class=\"desired\">{desired}</td>")),
            "{cluster}: {row}"
        );
        assert!(
            row.contains(&format!("<td class=\"observed\">{observed}</td>")),
            "{cluster}: {row}"
        );
        assert!(
            row.contains(&format!(
                "\">{uncovered}</td><td class=\"services-without-agent\""
            )),
            "{cluster}: {row}"
        );
    }
    // The dry run plans the tag of apps and holds legacy for its platform version.
    assert!(
        dom.contains("data-kind=\"tag_cluster\" data-resource=\"apps\""),
        "{dom}"
    );
    assert!(
        dom.contains("data-service=\"legacy\" data-code=\"platform_version\""),
        "{dom}"
    );

    let png = artifacts().join("status-page.png");
    let _ = std::fs::remove_file(&png);
    chromium(&[
        &format!("--screenshot={}", png.display()),
        "--window-size=1280,2000",
        "--hide-scrollbars",
        &daemon.url("/"),
    ]);
    assert_png(&png);
    // And as a phone shows it: the tables scroll sideways inside the page.
    let phone = artifacts().join("status-page-phone.png");
    chromium(&[
        &format!("--screenshot={}", phone.display()),
        "--window-size=390,1400",
        &daemon.url("/"),
    ]);
    assert_png(&phone);
    println!("screenshots: {} {}", png.display(), phone.display());
}

#[test]
fn chromium_renders_hostile_names_as_text_and_runs_nothing() {
    let html = gec_daemon::page::render(
        &gec_daemon::page::fixture::hostile(),
        &gec_daemon::page::PageOptions::default(),
    );
    let dir = tempfile::TempDir::new().expect("a temp dir");
    let file = dir.path().join("hostile.html");
    std::fs::write(&file, &html).expect("write the page");
    let dom = chromium(&["--dump-dom", &format!("file://{}", file.display())]).stdout;
    assert!(
        dom.contains("<title>GuardDuty ECS controller: status</title>"),
        "the title is not 'pwned': {dom}"
    );
    let lower = dom.to_ascii_lowercase();
    assert!(!lower.contains("<script"), "a script element: {dom}");
    assert!(!lower.contains("<img"), "an img element: {dom}");
    // The cluster name is text in its cell (serialized as text: `<` and `>` escaped).
    let as_text = "&lt;script&gt;document.title='pwned'&lt;/script&gt;\"&gt;&lt;img src=x onerror=\"document.title='pwned'\"&gt;";
    assert!(
        dom.contains(&format!("<td class=\"name\">{as_text}</td>")),
        "{dom}"
    );
    assert!(
        dom.contains(&format!("clusters[0].name: {as_text}")),
        "{dom}"
    );
    let shot = artifacts().join("status-page-hostile.png");
    chromium(&[
        &format!("--screenshot={}", shot.display()),
        "--window-size=1280,2000",
        &format!("file://{}", file.display()),
    ]);
    assert_png(&shot);
}

#[test]
fn a_broken_desired_state_file_shows_its_error_on_the_page_behind_the_token() {
    let sb = Sandbox::start();
    sb.seed(FLEET);
    let file = sb.write("desired.yaml", DESIRED);
    let token = sb.write("token", "page-test-token\n");
    let daemon = Daemon::start(
        &sb,
        &file,
        &[
            "--dry-run",
            "--status-token-file",
            token.to_str().expect("UTF-8 path"),
        ],
    );
    let auth = [("authorization", "Bearer page-test-token")];
    wait_for_pass(&daemon, &auth);
    let (code, headers, _) = get(&daemon.url("/"), &[]);
    assert_eq!(code, 401, "the page is guarded like /status");
    assert_eq!(header(&headers, "www-authenticate"), Some("Bearer"));
    let (code, _, page) = get(&daemon.url("/"), &auth);
    assert_eq!(code, 200);
    assert!(!page.contains("id=\"config-error\""), "{page}");

    replace_file(
        &file,
        "version: 1\ntargets: [{region: us-east-1}]\nclustres: []\n",
    );
    let shown = daemon.wait_for(Duration::from_secs(30), |d| {
        get(&d.url("/"), &auth).2.contains("id=\"config-error\"")
    });
    assert!(shown, "the page never showed the error: {}", daemon.logs());
    let (_, _, page) = get(&daemon.url("/"), &auth);
    let error = page
        .split("id=\"config-error\"")
        .nth(1)
        .and_then(|rest| rest.split("</div>").next())
        .unwrap_or_default();
    assert!(
        error.contains("the last good state stays in force"),
        "{error}"
    );
    assert!(
        error.contains("desired.yaml:3:1: unknown_field"),
        "the error names the file, line and problem: {error}"
    );
    // The last good state is still shown.
    assert!(page.contains("data-cluster=\"apps\""), "{page}");
}
