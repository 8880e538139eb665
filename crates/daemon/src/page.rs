//! The status page at `/`: server-rendered HTML5 of the same [`Status`] that `/status`
//! serves, for people during an incident. No script at all (the Content-Security-Policy
//! forbids any); an optional `<meta http-equiv="refresh">` when asked with
//! `/?refresh=N`. Every piece of text that comes from AWS, the desired-state file or an
//! error goes through [`escape`].
//!
//! Stable hooks for tests and scrapers: `section.target[data-target]`,
//! `tr.cluster[data-target][data-cluster][data-coverage]` with cells `td.desired`,
//! `td.observed`, `td.coverage`, `td.health`, `td.issue`, `td.uncovered`; `tr.action`,
//! `tr.redeploy`, `tr.held`, `tr.finding`, `tr.rollout`, `tr.conflict`;
//! `#last-pass`, `#desired-state`, `#config-error`, `#halted`, `#leader`, `#version`.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use gec_engine::TargetPass;
use gec_model::desired::account_of_arn;
use gec_model::plan::{Action, ChangeJson, Phase, PREFLIGHT_FINDING_CODES};

use crate::http::Shared;
use crate::status::{unix_secs, Status};

/// The shortest auto-refresh period `/?refresh=N` accepts, in seconds.
pub const MIN_REFRESH_SECS: u32 = 5;
/// The longest auto-refresh period `/?refresh=N` accepts, in seconds.
pub const MAX_REFRESH_SECS: u32 = 3600;

/// The response headers of the page: HTML, no script of any origin, no sniffing, no
/// caching (it is a snapshot of a moving state, and may be behind a token).
pub const HEADERS: [(header::HeaderName, &str); 4] = [
    (header::CONTENT_TYPE, "text/html; charset=utf-8"),
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'unsafe-inline'",
    ),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::CACHE_CONTROL, "no-store"),
];

/// How to render the page.
#[derive(Debug, Clone)]
pub struct PageOptions {
    /// Auto-refresh period in seconds (already bounded); `None`: no refresh.
    pub refresh: Option<u32>,
    /// The time of rendering, for "… ago".
    pub now: SystemTime,
    /// The controller's version, shown in the footer.
    pub version: String,
}

impl Default for PageOptions {
    fn default() -> Self {
        PageOptions {
            refresh: None,
            now: SystemTime::now(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

/// `GET /`.
pub async fn handler(State(shared): State<Arc<Shared>>, RawQuery(query): RawQuery) -> Response {
    let status = shared.status();
    let mut options = PageOptions {
        refresh: refresh_of(query.as_deref()),
        ..PageOptions::default()
    };
    if !status.version.is_empty() {
        options.version.clone_from(&status.version);
    }
    (HEADERS, render(&status, &options)).into_response()
}

/// The auto-refresh period a query string asks for: `refresh=N` with N in
/// [`MIN_REFRESH_SECS`]`..=`[`MAX_REFRESH_SECS`]; anything else (absent, not a number, out
/// of range, repeated differently) is ignored.
pub fn refresh_of(query: Option<&str>) -> Option<u32> {
    let mut found = None;
    for pair in query?.split('&') {
        let Some(value) = pair.strip_prefix("refresh=") else {
            continue;
        };
        // At most 4 digits: no arithmetic on a long string.
        if value.is_empty() || value.len() > 4 || !value.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n: u32 = value.parse().ok()?;
        if !(MIN_REFRESH_SECS..=MAX_REFRESH_SECS).contains(&n) || found.is_some_and(|f| f != n) {
            return None;
        }
        found = Some(n);
    }
    found
}

/// Escapes text for HTML element content and double- or single-quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters other than tab and newline have no place in a page.
            c if c.is_control() && c != '\t' && c != '\n' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "\
:root{color-scheme:light dark;--bad:#c62828;--warn:#b26a00;--good:#2e7d32;--muted:#777}
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;padding:0 1rem 2rem;max-width:90rem}
h1{font-size:1.4rem;margin:1rem 0 .25rem}h2{font-size:1.15rem;margin:1.75rem 0 .5rem;border-bottom:1px solid #8884}
h3{font-size:1rem;margin:1.25rem 0 .4rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:.5rem 0}dt{font-weight:600}dd{margin:0;overflow-wrap:anywhere}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch;max-width:100%}
table{border-collapse:collapse;min-width:100%;font-size:.9rem}
th,td{text-align:left;padding:.3rem .6rem;border-bottom:1px solid #8883;vertical-align:top;white-space:nowrap}
td.wrap{white-space:normal;min-width:12rem;overflow-wrap:anywhere}
td.name{white-space:normal;overflow-wrap:anywhere;max-width:22rem}td code{white-space:normal;overflow-wrap:break-word}
th{background:#8881;white-space:normal;min-width:4rem}
code{font-size:.85em;overflow-wrap:anywhere}
.alert{border-left:4px solid var(--bad);background:#c6282814;padding:.5rem .8rem;margin:.75rem 0}
.alert pre{white-space:pre-wrap;overflow-wrap:anywhere;margin:.3rem 0 0}
.warn{border-left-color:var(--warn);background:#b26a0014}
.ok{color:var(--good)}.bad{color:var(--bad);font-weight:600}.muted{color:var(--muted)}
.badge{display:inline-block;padding:0 .4rem;border-radius:.6rem;font-size:.8rem;background:#8882}
footer{margin-top:2rem;color:var(--muted);font-size:.85rem}
@media (max-width:40rem){body{padding:0 .5rem 1rem}dl{grid-template-columns:1fr}dt{margin-top:.3rem}}
";

/// The page.
pub fn render(status: &Status, options: &PageOptions) -> String {
    let json = status.json();
    let mut h = String::with_capacity(16 * 1024);
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    if let Some(n) = options.refresh {
        let _ = writeln!(h, "<meta http-equiv=\"refresh\" content=\"{n}\">");
    }
    h.push_str("<title>GuardDuty ECS controller: status</title>\n<style>");
    h.push_str(STYLE);
    h.push_str("</style></head>\n<body>\n<header>\n<h1>GuardDuty ECS controller</h1>\n");
    overview(&mut h, status, &json, options);
    h.push_str("</header>\n<main>\n");
    targets_table(&mut h, &json.targets);
    for (i, pass) in status.passes.iter().enumerate() {
        target_section(&mut h, i, pass, status);
    }
    conflicts(&mut h, &json.conflicts);
    h.push_str("</main>\n<footer>\n");
    let _ = write!(
        h,
        "<p>Rendered {}. The same state as JSON: <a href=\"status\">/status</a>. ",
        escape(&time(unix_secs(options.now), options.now))
    );
    match options.refresh {
        Some(n) => {
            let _ = writeln!(h, "Refreshes every {n} s (<a href=\"./\">stop</a>).</p>");
        }
        None => h.push_str("<a href=\"?refresh=30\">Refresh every 30 s</a>.</p>\n"),
    }
    let _ = writeln!(
        h,
        "<p id=\"version\">guardduty-ecs-controller {}</p>\n</footer>\n</body></html>",
        escape(&options.version)
    );
    h
}

fn overview(h: &mut String, status: &Status, json: &crate::status::StatusJson, o: &PageOptions) {
    if let Some(error) = &status.config_error {
        let kept = if status.sha256.is_some() {
            "The desired-state file is rejected; the last good state stays in force."
        } else {
            "The desired-state file is rejected, and no good state has been loaded yet."
        };
        let _ = writeln!(
            h,
            "<div id=\"config-error\" class=\"alert\" role=\"alert\"><strong>{kept}</strong><pre>{}</pre></div>",
            escape(error)
        );
    }
    if let Some(halt) = &json.halted {
        let _ = writeln!(
            h,
            "<div id=\"halted\" class=\"alert\" role=\"alert\"><strong>Redeploys are halted</strong>: the rollout of service <code>{}</code> in cluster <code>{}</code> failed (deployment <code>{}</code>).</div>",
            escape(&halt.service),
            escape(&halt.cluster),
            escape(&halt.deployment_id)
        );
    }
    h.push_str("<dl>\n<dt>Last pass</dt>");
    let last = &json.last_pass;
    match (last.finished_at, &last.result) {
        (Some(at), Some(result)) => {
            let class = if result == "success" { "ok" } else { "bad" };
            let _ = write!(
                h,
                "<dd id=\"last-pass\" data-result=\"{r}\">#{id} <span class=\"{class}\">{r}</span>, finished {t}",
                r = escape(result),
                id = last.id,
                t = escape(&time(at, o.now)),
            );
            if let Some(s) = last.seconds {
                let _ = write!(h, ", took {s:.1} s");
            }
            h.push_str("</dd>\n");
        }
        _ => h.push_str("<dd id=\"last-pass\" data-result=\"none\">none yet</dd>\n"),
    }
    if json.dry_run {
        h.push_str("<dt>Mode</dt><dd id=\"mode\"><span class=\"badge\">dry run</span> plans only, writes nothing</dd>\n");
    }
    let state = &json.desired_state;
    let _ = write!(
        h,
        "<dt>Desired state</dt><dd id=\"desired-state\"><code>{}</code>",
        escape(&state.source)
    );
    match (&state.sha256, state.loaded_at) {
        (Some(sha), Some(at)) => {
            let _ = write!(
                h,
                "<br>SHA-256 <code class=\"sha256\">{}</code><br>loaded {}",
                escape(sha),
                escape(&time(at, o.now))
            );
        }
        _ => h.push_str("<br><span class=\"bad\">no valid desired state loaded yet</span>"),
    }
    h.push_str("</dd>\n");
    let leader = &json.leader;
    h.push_str("<dt>Leader</dt><dd id=\"leader\">");
    if leader.enabled {
        let _ = write!(
            h,
            "{} (this replica: <code>{}</code>; holder: <code>{}</code>",
            if leader.leading {
                "<span class=\"ok\">leading</span>"
            } else {
                "following"
            },
            escape(leader.replica_id.as_deref().unwrap_or("?")),
            escape(leader.holder.as_deref().unwrap_or("none")),
        );
        if let Some(since) = leader.since {
            let _ = write!(h, " since {}", escape(&time(since, o.now)));
        }
        let _ = write!(
            h,
            "; lease table <code>{}</code>)",
            escape(leader.table.as_deref().unwrap_or("?"))
        );
    } else if leader.leading {
        h.push_str("no lease table: this process writes");
    } else {
        h.push_str("no lease table; writes nothing");
    }
    h.push_str("</dd>\n</dl>\n");
}

fn targets_table(h: &mut String, targets: &[crate::status::TargetJson]) {
    h.push_str("<h2 id=\"targets\">Targets</h2>\n");
    if targets.is_empty() {
        h.push_str("<p class=\"muted\">No pass has run yet.</p>\n");
        return;
    }
    h.push_str("<div class=\"scroll\"><table><thead><tr><th>Target</th><th>Role</th><th>Result</th><th>Pending</th><th>Error or refusal</th></tr></thead><tbody>\n");
    for t in targets {
        let (class, word) = match t.result {
            crate::status::TargetResult::Ok => ("ok", "ok"),
            crate::status::TargetResult::Error => ("bad", "error"),
        };
        let _ = write!(
            h,
            "<tr class=\"target-row\" data-target=\"{t_}\"><td><a href=\"#{anchor}\">{t_}</a></td><td><code>{role}</code></td><td class=\"{class}\">{word}</td><td>{pending}</td><td class=\"wrap\">",
            t_ = escape(&t.target),
            anchor = escape(&anchor(&t.target)),
            role = escape(t.role_arn.as_deref().unwrap_or("(ambient credentials)")),
            pending = t.pending.map_or_else(|| "—".to_owned(), |n| n.to_string()),
        );
        if let Some(e) = &t.error {
            let _ = write!(h, "<span class=\"bad\">{}</span>", escape(e));
        }
        if let Some(r) = &t.refused {
            let _ = write!(
                h,
                "refused by <code>{}</code>: {}",
                escape(&r.limit),
                escape(&r.reason)
            );
        }
        h.push_str("</td></tr>\n");
    }
    h.push_str("</tbody></table></div>\n");
}

/// A fragment id for a target label: only `[A-Za-z0-9-]`, so it needs no escaping.
fn anchor(label: &str) -> String {
    let safe: String = label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("target-{safe}")
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "—".to_owned(), |v| escape(&v.to_string()))
}

fn target_section(h: &mut String, index: usize, pass: &TargetPass, status: &Status) {
    let label = pass.target.label();
    let l = escape(&label);
    let plan = pass.pending();
    let account = pass
        .target
        .role_arn
        .as_deref()
        .and_then(account_of_arn)
        .map(str::to_owned)
        .or_else(|| plan.and_then(|p| p.clusters.first().and_then(|c| c.target.account.clone())));
    let _ = writeln!(
        h,
        "<section class=\"target\" id=\"{anchor}\" data-target=\"{l}\" data-index=\"{index}\">\n<h2>{l}</h2>\n<p class=\"muted\">account <code>{acct}</code> · region <code>{region}</code></p>",
        anchor = escape(&anchor(&label)),
        acct = escape(account.as_deref().unwrap_or("unknown")),
        region = escape(&pass.target.region),
    );
    if let Some(e) = &pass.error {
        let _ = writeln!(
            h,
            "<div class=\"alert target-error\" role=\"alert\"><strong>The pass failed in this target</strong><pre>{}</pre></div>",
            escape(&e.to_string())
        );
    }
    if pass.suspended {
        h.push_str("<div class=\"alert warn\"><strong>Suspended</strong> (<code>suspend: true</code>): nothing is written.</div>\n");
    }
    let Some(plan) = plan else {
        h.push_str(
            "<p class=\"muted\">No plan: the target could not be observed.</p>\n</section>\n",
        );
        return;
    };
    if let Some(r) = &plan.refused {
        let r = r.json();
        let _ = writeln!(
            h,
            "<div class=\"alert refused\"><strong>Plan refused by <code>{}</code></strong>: {}</div>",
            escape(&r.limit),
            escape(&r.reason)
        );
    }
    if !plan.warnings.is_empty() {
        h.push_str("<div class=\"alert warn warnings\"><strong>Warnings</strong><ul>");
        for w in &plan.warnings {
            let _ = write!(h, "<li>{}</li>", escape(w));
        }
        h.push_str("</ul></div>\n");
    }
    clusters(h, &label, plan);
    actions(h, &label, &plan.actions);
    held(h, &label, &plan.held);
    let watching: Vec<_> = status
        .watching
        .iter()
        .filter(|w| w.target == label)
        .collect();
    if !watching.is_empty() {
        h.push_str("<h3>Rollouts in progress</h3>\n<div class=\"scroll\"><table><thead><tr><th>Cluster</th><th>Service</th><th>Deployment</th><th>Controller</th></tr></thead><tbody>\n");
        for w in watching {
            let _ = writeln!(
                h,
                "<tr class=\"rollout\" data-target=\"{l}\" data-cluster=\"{c}\" data-service=\"{s}\"><td>{c}</td><td>{s}</td><td><code>{d}</code></td><td>{k}</td></tr>",
                c = escape(&w.cluster),
                s = escape(&w.service),
                d = if w.deployment_id.is_empty() {
                    "starting…".to_owned()
                } else {
                    escape(&w.deployment_id)
                },
                k = if w.codedeploy { "CODE_DEPLOY" } else { "ECS" },
            );
        }
        h.push_str("</tbody></table></div>\n");
    }
    h.push_str("</section>\n");
}

fn clusters(h: &mut String, label: &str, plan: &gec_model::TargetPlan) {
    let l = escape(label);
    let _ = writeln!(h, "<h3>Clusters ({})</h3>", plan.clusters.len());
    if plan.clusters.is_empty() {
        h.push_str("<p class=\"muted\">No ACTIVE cluster.</p>\n");
        return;
    }
    h.push_str("<div class=\"scroll\"><table class=\"clusters\"><thead><tr><th>Cluster</th><th>Desired tag</th><th>Observed tag</th><th>Coverage</th><th>GuardDuty health</th><th>Issue</th><th>Running</th><th>Uncovered tasks</th><th>Services without agent</th><th>Standalone without agent</th></tr></thead><tbody>\n");
    for row in &plan.clusters {
        let c = row.json();
        let coverage = c.coverage.as_str();
        let health = c.coverage_status.as_deref();
        let health_class = match health {
            Some("HEALTHY") => "ok",
            Some(_) => "bad",
            None => "muted",
        };
        let coverage_class = match coverage {
            "covered" => "ok",
            "expected" | "excluded" | "unmanaged" => "muted",
            _ => "bad",
        };
        let desired = c.desired.map(|d| match d {
            gec_model::plan::DesiredTag::True => "true",
            gec_model::plan::DesiredTag::False => "false",
            gec_model::plan::DesiredTag::Absent => "absent",
        });
        let mut issue = c.coverage_issue.as_deref().map(escape).unwrap_or_default();
        for f in &c.fargate_issues {
            if !issue.is_empty() {
                issue.push_str("<br>");
            }
            issue.push_str(&escape(f));
        }
        if let Some(m) = &c.management_type {
            let _ = write!(issue, " <span class=\"badge\">{}</span>", escape(m));
        }
        let uncovered_class = match c.uncovered_tasks {
            Some(n) if n > 0 => " bad",
            _ => "",
        };
        let _ = writeln!(
            h,
            "<tr class=\"cluster\" data-target=\"{l}\" data-cluster=\"{name}\" data-coverage=\"{coverage}\"><td class=\"name\">{name}</td><td class=\"desired\">{desired}</td><td class=\"observed\">{observed}</td><td class=\"coverage {coverage_class}\">{coverage}</td><td class=\"health {health_class}\">{health}</td><td class=\"issue wrap\">{issue}</td><td class=\"running\">{running}</td><td class=\"uncovered{uncovered_class}\">{uncovered}</td><td class=\"services-without-agent\">{swa}</td><td class=\"standalone\">{sa}</td></tr>",
            name = escape(&c.cluster),
            desired = opt(desired),
            observed = c.observed.as_deref().map_or_else(|| "(none)".to_owned(), escape),
            health = opt(health),
            running = opt(c.running_tasks),
            uncovered = opt(c.uncovered_tasks),
            swa = opt(c.services_without_agent),
            sa = opt(c.standalone_tasks_without_agent),
        );
    }
    h.push_str("</tbody></table></div>\n");
}

fn actions(h: &mut String, label: &str, actions: &[Action]) {
    let l = escape(label);
    let (redeploys, others): (Vec<_>, Vec<_>) =
        actions.iter().partition(|a| a.phase() == Phase::Redeploy);
    if !others.is_empty() {
        let _ = writeln!(h, "<h3>Pending changes ({})</h3>", others.len());
        h.push_str("<div class=\"scroll\"><table><thead><tr><th>Phase</th><th>Change</th><th>Resource</th><th>From</th><th>To</th></tr></thead><tbody>\n");
        for a in others {
            let j = a.json();
            let (kind, resource, from, to) = match &j.change {
                ChangeJson::TagCluster {
                    cluster, from, to, ..
                } => (
                    "tag_cluster",
                    cluster.clone(),
                    from.clone(),
                    Some(to.clone()),
                ),
                ChangeJson::UntagCluster { cluster, from, .. } => {
                    ("untag_cluster", cluster.clone(), Some(from.clone()), None)
                }
                ChangeJson::UpdateDetector {
                    detector_id,
                    feature,
                    from,
                    to,
                } => (
                    "update_detector",
                    format!("{detector_id}/{feature}"),
                    from.clone(),
                    Some(to.clone()),
                ),
                ChangeJson::UpdateOrganizationConfiguration {
                    detector_id,
                    feature,
                    from,
                    to,
                } => (
                    "update_organization_configuration",
                    format!("{detector_id}/{feature}"),
                    from.clone(),
                    Some(to.clone()),
                ),
                ChangeJson::RedeployService { service, .. } => {
                    ("redeploy_service", service.clone(), None, None)
                }
            };
            let _ = writeln!(
                h,
                "<tr class=\"action\" data-target=\"{l}\" data-kind=\"{kind}\" data-resource=\"{r}\"><td>{phase}</td><td>{kind}</td><td><code>{r}</code></td><td>{from}</td><td>{to}</td></tr>",
                phase = j.phase.as_str(),
                r = escape(&resource),
                from = from.as_deref().map_or_else(|| "(none)".to_owned(), escape),
                to = to.as_deref().map_or_else(|| "(removed)".to_owned(), escape),
            );
        }
        h.push_str("</tbody></table></div>\n");
    }
    if !redeploys.is_empty() {
        let _ = writeln!(h, "<h3>Pending redeploys ({})</h3>", redeploys.len());
        h.push_str("<div class=\"scroll\"><table><thead><tr><th>Cluster</th><th>Service</th><th>Purpose</th><th>Controller</th><th>Not before</th><th>Reason</th></tr></thead><tbody>\n");
        for a in redeploys {
            if let ChangeJson::RedeployService {
                cluster,
                service,
                purpose,
                deployment_controller,
                reason,
                not_before,
                ..
            } = a.json().change
            {
                let purpose = serde_json::to_value(purpose)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                let _ = writeln!(
                    h,
                    "<tr class=\"redeploy\" data-target=\"{l}\" data-cluster=\"{c}\" data-service=\"{s}\"><td>{c}</td><td>{s}</td><td>{p}</td><td>{dc}</td><td>{nb}</td><td class=\"wrap\">{reason}</td></tr>",
                    c = escape(&cluster),
                    s = escape(&service),
                    p = escape(&purpose),
                    dc = escape(&deployment_controller),
                    nb = opt(not_before),
                    reason = escape(&reason),
                );
            }
        }
        h.push_str("</tbody></table></div>\n");
    }
}

fn held(h: &mut String, label: &str, held: &[gec_model::plan::Held]) {
    let l = escape(label);
    // The services `guardduty_controller_preflight_findings` counts: they cannot get the
    // agent, so no redeploy helps.
    let (findings, others): (Vec<_>, Vec<_>) = held
        .iter()
        .partition(|x| PREFLIGHT_FINDING_CODES.contains(&x.reason.code()));
    for (rows, title, class) in [
        (
            findings,
            "Preflight findings: these services cannot get the agent",
            "finding",
        ),
        (others, "Held redeploys", "held"),
    ] {
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(h, "<h3>{title} ({})</h3>", rows.len());
        h.push_str("<div class=\"scroll\"><table><thead><tr><th>Cluster</th><th>Service</th><th>Code</th><th>Reason</th><th>Detail</th></tr></thead><tbody>\n");
        for x in rows {
            let j = x.json();
            let _ = writeln!(
                h,
                "<tr class=\"{class}\" data-target=\"{l}\" data-cluster=\"{c}\" data-service=\"{s}\" data-code=\"{code}\"><td>{c}</td><td>{s}</td><td><code>{code}</code></td><td class=\"wrap\">{reason}</td><td class=\"wrap\">{detail}</td></tr>",
                c = escape(&j.cluster),
                s = escape(&j.service),
                code = escape(&j.code),
                reason = escape(&j.reason),
                detail = opt(j.detail),
            );
        }
        h.push_str("</tbody></table></div>\n");
    }
}

fn conflicts(h: &mut String, conflicts: &[gec_model::plan::ConflictJson]) {
    if conflicts.is_empty() {
        return;
    }
    let _ = writeln!(
        h,
        "<h2 id=\"conflicts\">Conflicts ({})</h2>\n<p>Another writer keeps changing these back; the controller leaves them alone until their rule changes, AWS holds the desired value again, or <code>POST /conflicts/reset</code>.</p>",
        conflicts.len()
    );
    h.push_str("<div class=\"scroll\"><table><thead><tr><th>Account</th><th>Region</th><th>Kind</th><th>Resource</th><th>Desired</th><th>Observed</th><th>Reverts</th><th>Since</th><th>Changed back by</th></tr></thead><tbody>\n");
    for c in conflicts {
        let kind = serde_json::to_value(c.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let _ = writeln!(
            h,
            "<tr class=\"conflict\" data-resource=\"{r}\"><td>{a}</td><td>{reg}</td><td>{k}</td><td><code>{r}</code></td><td>{d}</td><td>{o}</td><td>{n}</td><td>{since}</td><td>{p}</td></tr>",
            a = opt(c.account.as_deref()),
            reg = escape(&c.region),
            k = escape(&kind),
            r = escape(&c.resource),
            d = escape(&c.desired),
            o = escape(&c.observed),
            n = c.reverts,
            since = escape(&c.since),
            p = opt(c.principal.as_deref()),
        );
    }
    h.push_str("</tbody></table></div>\n");
}

/// `2026-11-30 17:41:44 UTC (12 s ago)`.
fn time(at: f64, now: SystemTime) -> String {
    let stamp = if at.is_finite() {
        // Whole seconds within jiff's range; anything else shows as the number.
        jiff::Timestamp::from_second(at as i64).ok()
    } else {
        None
    };
    let Some(stamp) = stamp else {
        return format!("{at}");
    };
    let mut out = stamp.strftime("%Y-%m-%d %H:%M:%S UTC").to_string();
    let age = unix_secs(now) - at;
    if age.is_finite() && age >= 0.0 {
        let age = age as u64;
        let ago = match age {
            0..=119 => format!("{age} s"),
            120..=7199 => format!("{} min", age / 60),
            7200..=172_799 => format!("{} h", age / 3600),
            _ => format!("{} d", age / 86400),
        };
        let _ = write!(out, " ({ago} ago)");
    }
    out
}

#[cfg(any(test, feature = "testing"))]
pub mod fixture;
#[cfg(test)]
mod tests;
