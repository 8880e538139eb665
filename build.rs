//! The commit `--version` names: `git rev-parse HEAD` (and `-dirty` when `git status
//! --porcelain` lists anything) with the commit's date, else the environment's
//! `GEC_GIT_COMMIT` (the Dockerfile passes it: the image build has no .git), else
//! `unknown`. Reruns only when HEAD or the branch it points to change, so an ordinary
//! edit does not rebuild the binary for it.

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
    // Only this repository's own commit: a crate built from a tarball inside some other
    // git repository (a home directory under version control) has none.
    let own_repo = git(&["rev-parse", "--show-toplevel"]).is_some_and(|top| {
        let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
        match (std::fs::canonicalize(top), std::fs::canonicalize(manifest)) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
    });
    let from_git = own_repo
        .then(|| git(&["rev-parse", "HEAD"]))
        .flatten()
        .and_then(|c| short(&c));
    let described = match from_git {
        Some(commit) => {
            // HEAD (a worktree's own), the packed refs, and the branch it points to.
            // Only paths that exist: cargo reruns a script on every build while a path it
            // watches is missing. A branch whose ref is packed is watched through its
            // folder (a commit writes the loose ref again). The index is not watched (any
            // `git status` may rewrite it): `-dirty` is as of the last commit or checkout.
            let watch = |path: Option<String>| match path {
                Some(p) if std::path::Path::new(&p).exists() => {
                    println!("cargo:rerun-if-changed={p}");
                    true
                }
                _ => false,
            };
            watch(git(&["rev-parse", "--git-path", "HEAD"]));
            watch(git(&["rev-parse", "--git-path", "packed-refs"]));
            if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
                if !watch(git(&["rev-parse", "--git-path", &branch])) {
                    watch(git(&["rev-parse", "--git-path", "refs/heads"]));
                }
            }
            // `--no-optional-locks`: the build never rewrites the index itself.
            let dirty = git(&[
                "--no-optional-locks",
                "status",
                "--porcelain",
                "--untracked-files=no",
            ])
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
