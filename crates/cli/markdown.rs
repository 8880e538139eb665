//! `plan --output markdown`: a plan as a pull-request comment. A heading with the summary,
//! then one collapsible `<details>` block per target (open when it has changes) with a
//! `diff` code block: `-` the value AWS has, `+` the value the desired state wants, `!` a
//! redeploy, `#` what is held, refused or failed and why.
//!
//! Names from AWS or the desired-state file (clusters, services, tag values, reasons, AWS
//! error text) appear only inside the code blocks, one line per item (control characters
//! become spaces) that starts with its marker, so no line can close the fence and nothing
//! in it is HTML, a link or a mention. Outside them only labels, account ids and counts
//! appear, escaped as HTML entities all the same (an `@` also gets a zero-width space
//! after it: GitHub finds mentions after decoding entities). Each line and each refusal is
//! capped, and the whole comment stays under GitHub's 65,536-character limit; what does
//! not fit is cut with a note pointing to `--output json`.

use std::fmt::Write as _;

use gec_engine::TargetPass;
use gec_model::plan::{Deployer, RedeployPurpose, Scope};
use gec_model::Action;

use crate::output::{conflict_line, deployer_label, held_line};

/// The largest comment this renders, in bytes (so also in characters): GitHub refuses a
/// comment over 65,536 characters, and a sticky-comment action adds its own marker.
pub const MAX_BYTES: usize = 60_000;

/// What the truncation note and the closing of a block need at most.
const RESERVE: usize = 600;

/// Text from AWS or the file for Markdown and HTML, on one line: `&`, `<`, `>`, `"` and the
/// characters that open Markdown syntax become entities; control characters spaces.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '`' => out.push_str("&#96;"),
            '*' => out.push_str("&#42;"),
            '_' => out.push_str("&#95;"),
            '[' => out.push_str("&#91;"),
            ']' => out.push_str("&#93;"),
            '\\' => out.push_str("&#92;"),
            '|' => out.push_str("&#124;"),
            '~' => out.push_str("&#126;"),
            '#' => out.push_str("&#35;"),
            '!' => out.push_str("&#33;"),
            '@' => out.push_str("&#64;\u{200B}"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The most characters of one code-block line (an AWS error message can be long).
const MAX_LINE_CHARS: usize = 1_000;
/// The most refusals the heading lists.
const MAX_REFUSALS: usize = 10;

/// One line of a code block: control characters (a newline in an AWS message) are spaces,
/// so each item is one line and starts with its marker, at most [`MAX_LINE_CHARS`].
fn line(marker: char, text: &str) -> String {
    let mut text: String = text
        .chars()
        .take(MAX_LINE_CHARS + 1)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().count() > MAX_LINE_CHARS {
        text = text.chars().take(MAX_LINE_CHARS).collect();
        text.push_str(" [...]");
    }
    format!("{marker} {text}")
}

/// The code fence. Every line in a block starts with its marker (`+`, `-`, `!`, `#`), and a
/// closing fence is a line of backticks after at most three spaces, so no line can close it
/// whatever backticks it holds.
const FENCE: &str = "```";

/// The diff lines of one action.
fn action_lines(action: &Action) -> Vec<String> {
    match action {
        Action::TagCluster {
            cluster, from, to, ..
        } => {
            let mut out = Vec::new();
            if let Some(from) = from {
                out.push(line('-', &format!("{cluster}  GuardDutyManaged={from}")));
            }
            out.push(line('+', &format!("{cluster}  GuardDutyManaged={to}")));
            out
        }
        Action::UntagCluster { cluster, from, .. } => vec![
            line('-', &format!("{cluster}  GuardDutyManaged={from}")),
            line('+', &format!("{cluster}  (no GuardDutyManaged tag)")),
        ],
        Action::UpdateDetector {
            detector_id,
            feature,
            from,
            to,
            ..
        } => vec![
            line(
                '-',
                &format!(
                    "detector {detector_id}  {feature}={}",
                    from.as_ref().map_or("(not set)", |f| f.as_str())
                ),
            ),
            line('+', &format!("detector {detector_id}  {feature}={to}")),
        ],
        Action::UpdateOrganizationConfiguration {
            detector_id,
            feature,
            from,
            to,
            ..
        } => vec![
            line(
                '-',
                &format!(
                    "organization (detector {detector_id})  {feature} auto-enable={}",
                    from.as_deref().unwrap_or("(not set)")
                ),
            ),
            line(
                '+',
                &format!(
                    "organization (detector {detector_id})  {feature} auto-enable={}",
                    to.as_aws()
                ),
            ),
        ],
        Action::RedeployService {
            cluster,
            service,
            purpose,
            via,
            reason,
            ..
        } => {
            let what = match purpose {
                RedeployPurpose::AddAgent => "redeploy",
                RedeployPurpose::RemoveAgent => "redeploy to remove the agent",
            };
            let how = match via {
                Deployer::Ecs { .. } => "",
                Deployer::CodeDeploy(_) => " through CodeDeploy",
            };
            vec![line(
                '!',
                &format!(
                    "{what} {cluster}/{service}{how} ({}): {reason}",
                    deployer_label(via)
                ),
            )]
        }
    }
}

/// Changes of a plan, by kind.
#[derive(Default)]
struct Counts {
    tags: usize,
    untags: usize,
    detector: usize,
    redeploys: usize,
    removals: usize,
}

impl Counts {
    fn add(&mut self, action: &Action) {
        match action {
            Action::TagCluster { .. } => self.tags += 1,
            Action::UntagCluster { .. } => self.untags += 1,
            Action::UpdateDetector { .. } | Action::UpdateOrganizationConfiguration { .. } => {
                self.detector += 1
            }
            Action::RedeployService { purpose, .. } => {
                self.redeploys += 1;
                if *purpose == RedeployPurpose::RemoveAgent {
                    self.removals += 1;
                }
            }
        }
    }

    fn total(&self) -> usize {
        self.tags + self.untags + self.detector + self.redeploys
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// One target's block: its `<summary>` line and its code-block lines.
struct Block {
    open: bool,
    summary: String,
    lines: Vec<String>,
}

fn block(pass: &TargetPass) -> Block {
    let mut lines = Vec::new();
    let label = pass.target.label();
    let mut summary = format!("<b>{}</b>", escape(&label));
    let note = pass.target.management_note();
    if !note.is_empty() {
        summary.push_str(&escape(&note));
    }
    let account = pass
        .plan
        .as_ref()
        .and_then(|p| p.clusters.first())
        .and_then(|c| c.target.account.clone());
    if let Some(a) = account.filter(|a| !label.starts_with(a.as_str())) {
        let _ = write!(summary, " (account {})", escape(&a));
    }
    if let Some(e) = &pass.error {
        lines.push(line('#', &format!("ERROR: {e}")));
        summary.push_str(": <b>error</b>");
    }
    let Some(plan) = &pass.plan else {
        return Block {
            open: true,
            summary,
            lines,
        };
    };
    let mut counts = Counts::default();
    for action in &plan.actions {
        counts.add(action);
        lines.extend(action_lines(action));
    }
    for h in &plan.held {
        lines.push(line('#', &held_line(h)));
    }
    for c in &plan.conflicts {
        lines.push(line('#', &conflict_line(c)));
    }
    for w in &plan.warnings {
        lines.push(line('#', &format!("warning: {w}")));
    }
    if let Some(r) = &plan.refused {
        let scope = match r.scope {
            Scope::Fleet => "fleet-wide, ",
            Scope::Target => "",
        };
        lines.push(line(
            '#',
            &format!("REFUSED ({scope}safety.{}): {}", r.limit, r.reason),
        ));
        summary.push_str(": <b>refused</b>");
    }
    let mut parts = Vec::new();
    if counts.total() == 0 {
        parts.push(format!(
            "no changes ({})",
            plural(plan.clusters.len(), "cluster", "clusters")
        ));
    } else {
        parts.push(plural(counts.total(), "change", "changes"));
    }
    if !plan.held.is_empty() {
        parts.push(format!("{} held", plan.held.len()));
    }
    if !plan.conflicts.is_empty() {
        parts.push(plural(plan.conflicts.len(), "conflict", "conflicts"));
    }
    let _ = write!(summary, ": {}", parts.join(", "));
    Block {
        open: pass.error.is_some() || plan.refused.is_some() || counts.total() > 0,
        summary,
        lines,
    }
}

/// The heading and summary of the whole plan.
fn heading(passes: &[TargetPass]) -> String {
    let mut counts = Counts::default();
    let (mut clusters, mut held, mut conflicts) = (0, 0, 0);
    let mut refusals: Vec<String> = Vec::new();
    for plan in passes.iter().filter_map(|p| p.plan.as_ref()) {
        plan.actions.iter().for_each(|a| counts.add(a));
        clusters += plan.clusters.len();
        held += plan.held.len();
        conflicts += plan.conflicts.len();
        if let Some(r) = &plan.refused {
            let text = format!("safety.{}: {}", r.limit, r.reason);
            if !refusals.contains(&text) {
                refusals.push(text);
            }
        }
    }
    let failed = passes.iter().filter(|p| p.error.is_some()).count();
    let mut out = String::new();
    if counts.total() == 0 && failed > 0 {
        let _ = writeln!(
            out,
            "### guardduty-ecs-controller plan: no changes found, {} could not be planned\n",
            plural(failed, "target", "targets")
        );
    } else if counts.total() == 0 {
        out.push_str("### guardduty-ecs-controller plan: no changes\n\n");
    } else {
        let _ = writeln!(
            out,
            "### guardduty-ecs-controller plan: {} to tag, {}, {} to untag, {} to redeploy{}\n",
            counts.tags,
            plural(counts.detector, "detector change", "detector changes"),
            counts.untags,
            counts.redeploys,
            if counts.removals > 0 {
                format!(" ({} to remove the agent)", counts.removals)
            } else {
                String::new()
            }
        );
    }
    let _ = writeln!(
        out,
        "{}, {}; {} held, {}, {} could not be planned.",
        plural(passes.len(), "target", "targets"),
        plural(clusters, "cluster", "clusters"),
        plural(held, "service", "services"),
        plural(conflicts, "conflict", "conflicts"),
        plural(failed, "target", "targets"),
    );
    for r in refusals.iter().take(MAX_REFUSALS) {
        let r: String = r.chars().take(MAX_LINE_CHARS).collect();
        let _ = writeln!(out, "\n**Refused** by {}", escape(&r));
    }
    if refusals.len() > MAX_REFUSALS {
        let _ = writeln!(
            out,
            "\n**Refused** in {} more ways: see each target below.",
            refusals.len() - MAX_REFUSALS
        );
    }
    out
}

/// The plan as a pull-request comment (at most [`MAX_BYTES`]).
pub fn plan(passes: &[TargetPass]) -> String {
    let mut out = heading(passes);
    let blocks: Vec<Block> = passes.iter().map(block).collect();
    let (mut shown_lines, total_lines): (usize, usize) =
        (0, blocks.iter().map(|b| b.lines.len()).sum());
    let mut cut = false;
    for b in &blocks {
        if out.len() + b.summary.len() + RESERVE > MAX_BYTES {
            cut = true;
            break;
        }
        let _ = writeln!(
            out,
            "\n<details{}>\n<summary>{}</summary>",
            if b.open { " open" } else { "" },
            b.summary
        );
        if !b.lines.is_empty() {
            let fence = FENCE;
            let _ = writeln!(out, "\n{fence}diff");
            for l in &b.lines {
                if out.len() + l.len() + fence.len() + RESERVE > MAX_BYTES {
                    cut = true;
                    break;
                }
                out.push_str(l);
                out.push('\n');
                shown_lines += 1;
            }
            if cut {
                out.push_str("# (cut here)\n");
            }
            let _ = writeln!(out, "{fence}");
        }
        out.push_str("\n</details>\n");
        if cut {
            break;
        }
    }
    if cut {
        let _ = writeln!(
            out,
            "\n> **Truncated**: {shown_lines} of {total_lines} lines shown, to stay within \
             GitHub's comment size. Run `plan --output json` for the whole plan."
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use gec_engine::TargetPass;
    use gec_model::testing::{redeploy, row, target};
    use gec_model::TargetPlan;

    use super::{escape, plan, MAX_BYTES};

    fn pass(plan: TargetPlan) -> TargetPass {
        TargetPass {
            target: target("us-east-1"),
            plan: Some(plan),
            results: Vec::new(),
            error: None,
            suspended: false,
            after: None,
            events: Vec::new(),
        }
    }

    #[test]
    fn names_from_aws_cannot_open_html_or_close_the_fence() {
        let hostile = "x</summary><script>alert(1)</script>\n```\n<img src=x>";
        let mut p = TargetPlan::default();
        p.clusters.push(row("us-east-1", hostile));
        let mut action = redeploy("us-east-1", hostile, "api````");
        if let gec_model::Action::RedeployService { reason, .. } = &mut action {
            *reason = "tasks ``` without\n```\nthe agent".to_owned();
        }
        p.actions.push(action);
        let md = plan(&[pass(p)]);
        // Every line inside the block starts with its marker, so nothing closes it early:
        // the block ends at the first line that is only the fence.
        let (before, rest) = md.split_once("```diff\n").expect("one diff block");
        let (inside, after) = rest.split_once("\n```\n").expect("the fence closes");
        let inside: Vec<&str> = inside.lines().collect();
        assert!(
            inside.iter().all(|l| l.starts_with(['+', '-', '!', '#'])),
            "{inside:?}"
        );
        assert!(inside
            .iter()
            .any(|l| l.contains("<script>alert(1)</script>")));
        // Outside the code block (the HTML and Markdown GitHub interprets), no tag from
        // the names.
        let outside = format!("{before}{after}");
        assert!(
            !outside.contains("<script>") && !outside.contains("<img"),
            "{md}"
        );
        assert_eq!(
            escape("a<b>&\"`*_[x]|"),
            "a&lt;b&gt;&amp;&quot;&#96;&#42;&#95;&#91;x&#93;&#124;"
        );
    }

    #[test]
    fn untags_holds_refusals_and_quiet_targets_each_have_their_line() {
        use gec_model::plan::{HoldReason, Refusal, Scope};
        use gec_model::testing::{held, tag};
        let mut busy = TargetPlan::default();
        busy.clusters.push(row("us-east-1", "payments-prod"));
        busy.actions.push(tag("us-east-1", "payments-prod"));
        busy.actions.push(gec_model::Action::UntagCluster {
            target: gec_model::testing::target_ref("us-east-1"),
            cluster: "scratch".to_owned(),
            cluster_arn: gec_model::testing::arn("scratch"),
            from: "true".to_owned(),
        });
        busy.held.push(held(
            "us-east-1",
            "payments-prod",
            "batch",
            HoldReason::Excluded,
        ));
        busy.refused = Some(Refusal {
            region: "us-east-1".to_owned(),
            scope: Scope::Target,
            targets: vec!["us-east-1".to_owned()],
            limit: "maxClusterChangesPerCycle",
            value: 2.0,
            max: 1.0,
            reason: "2 tag changes > 1 <allowed>".to_owned(),
        });
        let mut quiet = TargetPlan::default();
        quiet.clusters.push(row("us-east-1", "orders-prod"));
        let md = plan(&[pass(busy), pass(quiet)]);
        for want in [
            "### guardduty-ecs-controller plan: 1 to tag, 0 detector changes, 1 to untag, 0 to redeploy\n",
            "2 targets, 2 clusters; 1 service held, 0 conflicts, 0 targets could not be planned.",
            "**Refused** by safety.maxClusterChangesPerCycle: 2 tag changes &gt; 1 &lt;allowed&gt;",
            "+ payments-prod  GuardDutyManaged=true\n",
            "- scratch  GuardDutyManaged=true\n+ scratch  (no GuardDutyManaged tag)\n",
            "# held: payments-prod/batch: excluded",
            "# REFUSED (safety.maxClusterChangesPerCycle): 2 tag changes > 1 <allowed>",
            "<details open>\n<summary><b>us-east-1</b> (account 123456789012): <b>refused</b>",
            "<details>\n<summary><b>us-east-1</b> (account 123456789012): no changes (1 cluster)</summary>\n\n</details>",
        ] {
            assert!(md.contains(want), "{want:?} not in\n{md}");
        }
    }

    #[test]
    fn a_huge_plan_is_cut_below_github_s_limit_with_a_note() {
        let mut p = TargetPlan::default();
        for i in 0..5_000 {
            let name = format!("cluster-{i:05}-{}", "x".repeat(40));
            p.clusters.push(row("us-east-1", &name));
            p.actions.push(redeploy("us-east-1", &name, "api"));
        }
        let md = plan(&[pass(p)]);
        assert!(md.len() <= MAX_BYTES, "{}", md.len());
        assert!(md.contains("Run `plan --output json` for the whole plan."));
        assert!(md.ends_with("for the whole plan.\n"));
        // The code block and the details are closed before the note.
        assert!(
            md.contains("# (cut here)\n`````\n\n</details>\n")
                || md.contains("# (cut here)\n```\n\n</details>\n"),
            "{}",
            &md[md.len() - 400..]
        );
    }

    #[test]
    fn long_lines_and_many_refusals_stay_within_the_limit() {
        use gec_model::plan::{Refusal, Scope};
        // One reason of 40,000 backticks, and 600 targets refused for different reasons.
        let mut p = TargetPlan::default();
        let mut action = redeploy("us-east-1", "apps", "api");
        if let gec_model::Action::RedeployService { reason, .. } = &mut action {
            *reason = "`".repeat(40_000);
        }
        p.actions.push(action);
        let mut passes = vec![pass(p)];
        for i in 0..600 {
            let refused = TargetPlan {
                refused: Some(Refusal {
                    region: "us-east-1".to_owned(),
                    scope: Scope::Target,
                    targets: vec!["us-east-1".to_owned()],
                    limit: "maxClusterChangesPerCycle",
                    value: f64::from(i),
                    max: 1.0,
                    reason: format!("{i} tag changes > 1 {}", "y".repeat(150)),
                }),
                ..TargetPlan::default()
            };
            passes.push(pass(refused));
        }
        let md = plan(&passes);
        assert!(md.len() <= MAX_BYTES, "{}", md.len());
        assert_eq!(md.matches("**Refused** by").count(), 10, "{md}");
        assert!(md.contains("**Refused** in 590 more ways"));
        let longest = md.lines().map(str::len).max().unwrap_or_default();
        assert!(longest < 1_100, "{longest}");
    }

    #[test]
    fn a_mention_in_a_label_pings_nobody() {
        assert_eq!(escape("@team"), "&#64;\u{200B}team");
    }
}
