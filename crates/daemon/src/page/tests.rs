use std::time::{Duration, UNIX_EPOCH};

use super::fixture::{hostile, hostile_text, sample};
use super::*;

fn options() -> PageOptions {
    PageOptions {
        refresh: None,
        now: UNIX_EPOCH + Duration::from_secs(1_764_000_112),
        version: "1.2.3".into(),
    }
}

/// Text between `<tag` and the next `>` of every start tag of `name`.
fn count_tags(html: &str, name: &str) -> usize {
    html.to_ascii_lowercase()
        .matches(&format!("<{name}"))
        .count()
}

#[test]
fn hostile_names_render_as_text_never_as_markup() {
    let html = render(&hostile(), &options());
    for tag in ["script", "img", "iframe", "svg"] {
        assert_eq!(count_tags(&html, tag), 0, "<{tag} in the page:\n{html}");
    }
    assert!(!html.contains("onerror=\"document"), "{html}");
    let escaped = escape(&hostile_text());
    assert_eq!(
        escaped,
        "&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;&quot;&gt;&lt;img src=x onerror=&quot;document.title=&#39;pwned&#39;&quot;&gt;"
    );
    // In the cluster row (as text and in its data attributes), the target, the config
    // error, the held service, the conflict, the rollout and the halt.
    assert!(
        html.matches(escaped.as_str()).count() >= 10,
        "escaped text shown: {}",
        html.matches(escaped.as_str()).count()
    );
    assert!(html.contains(&format!("data-cluster=\"{escaped}\"")));
    assert!(html.contains(&format!("<pre>clusters[0].name: {escaped}</pre>")));
    assert!(
        html.contains(&format!("data-target=\"us-east-1{escaped}\""))
            || html.contains(&format!("data-target=\"123456789012/us-east-1{escaped}\""))
    );
    // Fragment ids are reduced to [A-Za-z0-9-].
    assert!(!html.contains("id=\"target-123456789012-us-east-1<"));
}

#[test]
fn escape_handles_every_special_character_and_control_characters() {
    assert_eq!(escape("a&b<c>d\"e'f"), "a&amp;b&lt;c&gt;d&quot;e&#39;f");
    assert_eq!(
        escape("tab\tnl\nnul\0esc\u{1b}"),
        "tab\tnl\nnul\u{FFFD}esc\u{FFFD}"
    );
    assert_eq!(escape("ünïcode ✓"), "ünïcode ✓");
}

#[test]
fn the_page_shows_clusters_redeploys_findings_rollouts_and_conflicts_with_stable_hooks() {
    let html = render(&sample(), &options());
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<meta name=\"viewport\""));
    assert!(
        !html.contains("http-equiv=\"refresh\""),
        "no refresh unless asked"
    );
    assert_eq!(count_tags(&html, "script"), 0);
    assert!(html.contains(
        "<tr class=\"cluster\" data-target=\"us-east-1\" data-cluster=\"covered\" data-coverage=\"covered\"><td class=\"name\">covered</td><td class=\"desired\">true</td><td class=\"observed\">true</td><td class=\"coverage ok\">covered</td><td class=\"health ok\">HEALTHY</td>"
    ), "{html}");
    assert!(html.contains(
        "<tr class=\"cluster\" data-target=\"us-east-1\" data-cluster=\"apps\" data-coverage=\"expected\"><td class=\"name\">apps</td><td class=\"desired\">true</td><td class=\"observed\">(none)</td><td class=\"coverage muted\">expected</td><td class=\"health bad\">UNHEALTHY</td><td class=\"issue wrap\">No agent reporting</td><td class=\"running\">4</td><td class=\"uncovered bad\">3</td>"
    ), "{html}");
    assert!(html.contains("data-cluster=\"off\" data-coverage=\"excluded\""));
    assert!(html.contains("<tr class=\"action\" data-target=\"us-east-1\" data-kind=\"tag_cluster\" data-resource=\"apps\">"));
    assert!(html.contains("<tr class=\"redeploy\" data-target=\"us-east-1\" data-cluster=\"apps\" data-service=\"api\">"));
    assert!(html.contains("<tr class=\"finding\" data-target=\"us-east-1\" data-cluster=\"apps\" data-service=\"legacy\" data-code=\"platform_version\">"));
    assert!(html.contains("platform version 1.3.0"));
    assert!(html.contains("<tr class=\"held\" data-target=\"us-east-1\" data-cluster=\"apps\" data-service=\"db\" data-code=\"redeploy_disabled\">"));
    assert!(html.contains("<tr class=\"rollout\" data-target=\"us-east-1\" data-cluster=\"covered\" data-service=\"web\">"));
    assert!(html.contains("<tr class=\"conflict\""));
    assert!(html.contains("<dd id=\"last-pass\" data-result=\"success\">#7 <span class=\"ok\">success</span>, finished 2025-11-24 16:01:40 UTC (12 s ago), took 1.5 s</dd>"), "{html}");
    assert!(html.contains(&"ab".repeat(32)));
    assert!(html.contains("<p id=\"version\">guardduty-ecs-controller 1.2.3</p>"));
    assert!(!html.contains("id=\"config-error\""));
    assert!(!html.contains("id=\"halted\""));
}

#[test]
fn an_empty_status_renders_without_a_pass() {
    let html = render(&Status::default(), &options());
    assert!(html.contains("data-result=\"none\""));
    assert!(html.contains("no valid desired state loaded yet"));
    assert!(html.contains("No pass has run yet."));
}

#[test]
fn refresh_is_honoured_only_within_bounds() {
    assert_eq!(refresh_of(None), None);
    assert_eq!(refresh_of(Some("")), None);
    assert_eq!(refresh_of(Some("refresh=30")), Some(30));
    assert_eq!(refresh_of(Some("x=1&refresh=5")), Some(5));
    assert_eq!(refresh_of(Some("refresh=3600")), Some(3600));
    for bad in [
        "refresh=4",
        "refresh=3601",
        "refresh=0",
        "refresh=-5",
        "refresh=+30",
        "refresh=30s",
        "refresh=",
        "refresh=99999999999999999999",
        "refresh=30&refresh=60",
        "refresh=%33%30",
    ] {
        assert_eq!(refresh_of(Some(bad)), None, "{bad}");
    }
    assert_eq!(refresh_of(Some("refresh=30&refresh=30")), Some(30));
    let html = render(
        &sample(),
        &PageOptions {
            refresh: Some(30),
            ..options()
        },
    );
    assert!(html.contains("<meta http-equiv=\"refresh\" content=\"30\">"));
}
