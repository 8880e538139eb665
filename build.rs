//! The commit `--version` names: `git rev-parse HEAD` (and `-dirty` when `git status
//! --porcelain` lists anything) with the commit's date, else the environment's
//! `GEC_GIT_COMMIT` (the Dockerfile passes it: the image build has no .git), else
//! `unknown`. Reruns only when HEAD, the branch it points to, or the index change, so an
//! ordinary edit does not rebuild the binary for it.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    Some(text.trim().to_owned())
}

/// The first 12 characters of a hex commit id, if it is one.
fn short(commit: &str) -> Option<String> {
    let commit = commit.trim();
    (commit.len() >= 12 && commit.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| commit[..12].to_ascii_lowercase())
}

fn main() {
    println!("cargo:rerun-if-env-changed=GEC_GIT_COMMIT");
    println!("cargo:rerun-if-env-changed=GEC_GIT_DATE");
    let from_git = git(&["rev-parse", "HEAD"]).and_then(|c| short(&c));
    let described = match from_git {
        Some(commit) => {
            // HEAD, the ref it points to (a worktree's own HEAD, the common refs), the
            // packed refs, and the index (a commit or `git add`).
            for what in ["HEAD", "index", "packed-refs"] {
                if let Some(path) = git(&["rev-parse", "--git-path", what]) {
                    println!("cargo:rerun-if-changed={path}");
                }
            }
            if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
                if let Some(path) = git(&["rev-parse", "--git-path", &branch]) {
                    println!("cargo:rerun-if-changed={path}");
                }
            }
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            let date = git(&["log", "-1", "--format=%cs", "HEAD"]).unwrap_or_default();
            format!(
                "{commit}{}{}{date}",
                if dirty { "-dirty" } else { "" },
                if date.is_empty() { "" } else { " " }
            )
        }
        None => {
            let commit = std::env::var("GEC_GIT_COMMIT").ok().and_then(|c| short(&c));
            let date = std::env::var("GEC_GIT_DATE")
                .ok()
                .filter(|d| d.len() == 10 && d.bytes().all(|b| b.is_ascii_digit() || b == b'-'));
            match (commit, date) {
                (Some(c), Some(d)) => format!("{c} {d}"),
                (Some(c), None) => c,
                (None, _) => "unknown".to_owned(),
            }
        }
    };
    println!(
        "cargo:rustc-env=GEC_VERSION={} (commit {described})",
        std::env::var("CARGO_PKG_VERSION").unwrap_or_default()
    );
}
