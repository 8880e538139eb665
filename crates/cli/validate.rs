//! `validate`: reads desired-state files and says what is wrong with each, for people
//! (each mistake with its line and a caret) or as one JSON document (`--output json`).
//! No AWS call; exit 0 when every file is valid, 1 otherwise.

use std::path::{Path, PathBuf};

use gec_model::desired::{ConfigError, ConfigErrorKind, ConfigErrors};
use schemars::JsonSchema;
use serde::Serialize;

use crate::args::ValidateOutput;

/// What `validate --output json` prints: one document for all the files.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(title = "guardduty-ecs-controller validate --output json")]
pub struct ValidateReport {
    /// One entry per file, in the order given.
    pub files: Vec<FileReport>,
}

/// The verdict on one file.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileReport {
    /// The file as named on the command line.
    pub file: String,
    /// Whether the file is a valid desired state (then `errors` is empty).
    pub valid: bool,
    /// Every mistake, in document order; a file that cannot be read has one, of kind
    /// `unreadable` (or `limit` when it is too large).
    pub errors: Vec<ConfigError>,
}

/// The JSON Schema of `validate --output json`.
pub fn schema() -> serde_json::Value {
    gec_model::plan::output_schema::<ValidateReport>()
}

/// Checks every file; the exit code.
pub fn run(files: &[PathBuf], output: ValidateOutput) -> u8 {
    let mut report = ValidateReport { files: Vec::new() };
    for file in files {
        let name = file.display().to_string();
        let verdict = check(file, &name);
        if output == ValidateOutput::Text {
            print_text(&name, &verdict);
        }
        let errors = match verdict {
            Verdict::Valid => Vec::new(),
            Verdict::Invalid { errors, .. } => errors.errors,
            Verdict::Unreadable(e) => vec![e],
        };
        report.files.push(FileReport {
            file: name,
            valid: errors.is_empty(),
            errors,
        });
    }
    if output == ValidateOutput::Json {
        match serde_json::to_string_pretty(&report) {
            Ok(json) => println!("{json}"),
            Err(e) => {
                eprintln!("error: {e}");
                return super::EXIT_ERROR;
            }
        }
    }
    if report.files.iter().all(|f| f.valid) {
        super::EXIT_OK
    } else {
        super::EXIT_ERROR
    }
}

enum Verdict {
    Valid,
    /// The mistakes, and the text they are in (for the lines shown).
    Invalid {
        errors: ConfigErrors,
        text: String,
    },
    Unreadable(ConfigError),
}

fn check(file: &Path, name: &str) -> Verdict {
    // Regular files only, at most 1 MiB, and a FIFO cannot block (issue 11).
    let bytes = match gec_daemon::read::read_desired_file(file) {
        Ok(bytes) => bytes,
        Err(e) => {
            let kind = match e {
                gec_daemon::read::ReadError::TooLarge { .. } => ConfigErrorKind::Limit,
                _ => ConfigErrorKind::Unreadable,
            };
            let message = format!("{:#}", anyhow::Error::from(e));
            return Verdict::Unreadable(ConfigError::whole_file(kind, message));
        }
    };
    match gec_model::desired::parse_bytes(name, &bytes) {
        Ok(_) => Verdict::Valid,
        Err(errors) => Verdict::Invalid {
            errors,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        },
    }
}

fn print_text(name: &str, verdict: &Verdict) {
    match verdict {
        Verdict::Valid => println!("{name}: ok"),
        Verdict::Invalid { errors, text } => {
            let n = errors.errors.len();
            eprintln!(
                "{}\n{name}: {n} error{}, nothing applied",
                errors.render(text),
                if n == 1 { "" } else { "s" }
            );
        }
        Verdict::Unreadable(e) => eprintln!("{name}: {}", e.message),
    }
}
