//! `completions <shell>` and `man`: generated from the same clap definition as the parser
//! (clap_complete, clap_mangen), so they never name a flag the binary lacks.

use std::path::Path;

use anyhow::Context;
use clap::CommandFactory;

use crate::args::Cli;
use crate::EXIT_OK;

/// The command as the generators see it: the binary's name on every subcommand.
fn command() -> clap::Command {
    let mut cmd = Cli::command();
    cmd.build();
    cmd
}

/// Prints the completion script of `shell`.
pub fn completions(shell: clap_complete::Shell) -> anyhow::Result<u8> {
    let mut cmd = command();
    let name = cmd.get_name().to_owned();
    // Into memory first: clap_complete panics when its writer fails (a closed or full
    // stdout); a failed write of the whole script is an error instead.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, name, &mut script);
    std::io::Write::write_all(&mut std::io::stdout(), &script)
        .context("cannot write the completion script to stdout")?;
    Ok(EXIT_OK)
}

/// The man page of the top-level command, with a SUBCOMMANDS section, then one page per
/// subcommand appended (roff, one document; `man -l` renders it).
fn pages() -> Vec<(String, Vec<u8>)> {
    let cmd = command();
    let mut out = Vec::new();
    let top = cmd.get_name().to_owned();
    let mut page = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = clap_mangen::Man::new(cmd.clone()).render(&mut page);
    out.push((format!("{top}.1"), page));
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("{top}-{}", sub.get_name());
        let mut page = Vec::new();
        // clap names commands by `&'static str` (no `string` feature); `man` runs once
        // and exits, so the few names leaked here are freed with the process.
        let leaked: &'static str = Box::leak(name.clone().into_boxed_str());
        let _ = clap_mangen::Man::new(sub.clone().name(leaked)).render(&mut page);
        out.push((format!("{name}.1"), page));
    }
    out
}

/// Prints the top-level man page, or writes every page into `dir`.
pub fn man(dir: Option<&Path>) -> anyhow::Result<u8> {
    let pages = pages();
    match dir {
        None => {
            use std::io::Write as _;
            let (_, top) = &pages[0];
            std::io::stdout().write_all(top)?;
        }
        Some(dir) => {
            for (file, page) in &pages {
                let path = dir.join(file);
                std::fs::write(&path, page).with_context(|| path.display().to_string())?;
                println!("{}", path.display());
            }
        }
    }
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_subcommand_has_a_page() {
        let pages = super::pages();
        let names: Vec<&str> = pages.iter().map(|(n, _)| n.as_str()).collect();
        for sub in [
            "plan",
            "apply",
            "status",
            "run",
            "validate",
            "completions",
            "man",
        ] {
            assert!(
                names.contains(&format!("guardduty-ecs-controller-{sub}.1").as_str()),
                "{names:?}"
            );
        }
        for (name, page) in &pages {
            let text = String::from_utf8_lossy(page);
            assert!(
                text.starts_with(".ie") || text.contains(".TH"),
                "{name}: {text}"
            );
        }
    }
}
