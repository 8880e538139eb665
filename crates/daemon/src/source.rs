//! The desired-state file and its last known good content.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use gec_aws::{Fetched, ObjectClient, ObjectLocation};
use gec_model::desired::ConfigErrors;
use gec_model::DesiredState;
use sha2::{Digest, Sha256};

use crate::read::read_desired_file;

/// A desired state that parsed and validated.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The state.
    pub desired: Arc<DesiredState>,
    /// SHA-256 of the file's bytes, hex (compare with `sha256sum`).
    pub sha256: String,
    /// When it was loaded.
    pub loaded_at: SystemTime,
}

/// What a refresh found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refresh {
    /// Same bytes (or the same failure) as last time: nothing to do.
    Unchanged,
    /// New content that parsed: it is now in force.
    Loaded,
    /// New content (or a read failure) that is not a valid desired state; the last known
    /// good state stays in force.
    Failed,
}

/// Where the desired state comes from.
#[derive(Debug, Clone)]
pub enum Location {
    /// A file (watched).
    File(PathBuf),
    /// An S3 object (polled with a conditional GET on its ETag).
    Object(ObjectLocation),
}

impl Location {
    /// `s3://bucket/key` or a file path.
    pub fn parse(text: &str) -> Self {
        ObjectLocation::parse(text)
            .map_or_else(|| Location::File(PathBuf::from(text)), Location::Object)
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::File(p) => write!(f, "{}", p.display()),
            Location::Object(o) => write!(f, "{o}"),
        }
    }
}

/// The desired-state file or object: re-read on every pass, applied only when valid.
#[derive(Debug)]
pub struct Source {
    location: Location,
    objects: Option<ObjectClient>,
    etag: Option<String>,
    last_attempt: Option<String>,
    good: Option<Loaded>,
    error: Option<String>,
    parses: u64,
}

impl Source {
    /// A source that has loaded nothing yet; `objects` reads `s3://` locations.
    pub fn new(location: Location, objects: Option<ObjectClient>) -> Self {
        Source {
            location,
            objects,
            etag: None,
            last_attempt: None,
            good: None,
            error: None,
            parses: 0,
        }
    }

    /// Where it comes from.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The state in force, if any file was ever valid.
    pub fn good(&self) -> Option<&Loaded> {
        self.good.as_ref()
    }

    /// The current file's problem, if it is not valid: locations and kinds only, never
    /// the file's content.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// How many times content was parsed: unchanged bytes are not parsed again.
    pub fn parses(&self) -> u64 {
        self.parses
    }

    /// Reads the file (or object) again. Content that is missing, empty, unreadable or
    /// invalid never replaces the last known good state.
    ///
    /// # Guarantees
    /// At most [`MAX_DESIRED_BYTES`](crate::read::MAX_DESIRED_BYTES) are read, and nothing
    /// at the path can block the read. The bytes' hash is compared with the last
    /// attempt's before they are parsed, so an unchanged file (good or bad) costs one read
    /// and one hash. The error kept for [`Source::error`] names locations and kinds only,
    /// never the content.
    pub async fn refresh(&mut self) -> Refresh {
        let name = self.location.to_string();
        // The fingerprint of what was found: the bytes' hash, or the read failure's kind.
        let (fingerprint, bytes) = match self.read().await {
            Read::NotModified => return Refresh::Unchanged,
            Read::Failed(what) => (format!("unreadable: {what}"), Err(what)),
            Read::Bytes(bytes) => (hex(&Sha256::digest(&bytes)), Ok(bytes)),
        };
        if self.last_attempt.as_deref() == Some(fingerprint.as_str()) {
            return Refresh::Unchanged;
        }
        let parsed = match bytes {
            Err(what) => Err(format!("{name}: cannot read: {what}")),
            Ok(bytes) => {
                self.parses += 1;
                parse(&name, bytes).map(|d| (d, fingerprint.clone()))
            }
        };
        self.last_attempt = Some(fingerprint);
        match parsed {
            Ok((desired, sha256)) => {
                self.good = Some(Loaded {
                    desired: Arc::new(desired),
                    sha256,
                    loaded_at: SystemTime::now(),
                });
                self.error = None;
                Refresh::Loaded
            }
            Err(message) => {
                self.error = Some(message);
                Refresh::Failed
            }
        }
    }

    async fn read(&mut self) -> Read {
        match &self.location {
            Location::File(path) => match read_desired_file(path) {
                Ok(bytes) => Read::Bytes(bytes),
                Err(e) => Read::Failed(e.kind()),
            },
            Location::Object(at) => match &self.objects {
                None => Read::Failed("no_client"),
                Some(client) => match client.fetch(at, self.etag.as_deref()).await {
                    Ok(Fetched::NotModified) => Read::NotModified,
                    Ok(Fetched::Object { bytes, etag }) => {
                        self.etag = etag;
                        Read::Bytes(bytes)
                    }
                    Err(e) => {
                        self.etag = None;
                        Read::Failed(e.kind())
                    }
                },
            },
        }
    }
}

/// What one read found; failures are kept as a content-free kind.
enum Read {
    NotModified,
    Bytes(Vec<u8>),
    Failed(&'static str),
}

/// How many error locations `/status` lists before it only counts the rest.
const MAX_LISTED_ERRORS: usize = 10;

/// Parses the bytes through the whole validate path (size, encoding, characters, depth,
/// ...: `parse_bytes`); an error is reduced to [`redact`]'s locations and kinds.
fn parse(name: &str, bytes: Vec<u8>) -> Result<DesiredState, String> {
    gec_model::desired::parse_bytes(name, &bytes).map_err(|e| redact(&e))
}

const HINT: &str = "run `guardduty-ecs-controller validate` on the file for details";

/// The errors of a file as `file:line:column: kind` ([`ConfigErrors::locations`]),
/// without field paths or messages: both can quote the file (an unknown key's name, a
/// rejected value), and the file may be anything the path points to, a secret included.
pub fn redact(errors: &ConfigErrors) -> String {
    format!("{} ({HINT})", errors.locations(MAX_LISTED_ERRORS))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use gec_model::desired::ConfigError;

    const GOOD: &str = "version: 1\ntargets:\n  - region: us-east-1\n";

    #[tokio::test]
    async fn a_broken_missing_or_empty_file_keeps_the_last_good_state() {
        let dir = std::env::temp_dir().join(format!("gec-source-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("desired.yaml");
        let mut source = Source::new(Location::File(path.clone()), None);

        assert_eq!(source.refresh().await, Refresh::Failed, "no file yet");
        assert!(source.good().is_none());

        std::fs::write(&path, GOOD).unwrap();
        assert_eq!(source.refresh().await, Refresh::Loaded);
        assert_eq!(source.refresh().await, Refresh::Unchanged, "same bytes");
        let sha = source.good().unwrap().sha256.clone();

        for broken in [
            "",
            "version: 1\ntargets: [",
            "version: 1\ntargets: []\nbogus: 1\n",
        ] {
            std::fs::write(&path, broken).unwrap();
            assert_eq!(source.refresh().await, Refresh::Failed, "{broken:?}");
            assert_eq!(source.good().unwrap().sha256, sha, "last good stays");
            assert!(source.error().is_some());
        }
        std::fs::remove_file(&path).unwrap();
        assert_eq!(source.refresh().await, Refresh::Failed, "deleted");
        assert_eq!(
            source.refresh().await,
            Refresh::Unchanged,
            "a failure is counted once"
        );
        assert_eq!(source.good().unwrap().sha256, sha);

        std::fs::write(&path, GOOD).unwrap();
        assert_eq!(source.refresh().await, Refresh::Loaded, "fixing it resumes");
        assert!(source.error().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn unchanged_bytes_are_not_parsed_again_good_or_bad() {
        let dir = std::env::temp_dir().join(format!("gec-source-hash-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("desired.yaml");
        let mut source = Source::new(Location::File(path.clone()), None);

        std::fs::write(&path, "version: 1\ntargets: []\nbogus: 1\n").unwrap();
        assert_eq!(source.refresh().await, Refresh::Failed);
        assert_eq!(source.parses(), 1);
        for _ in 0..3 {
            assert_eq!(source.refresh().await, Refresh::Unchanged);
        }
        assert_eq!(
            source.parses(),
            1,
            "an unchanged bad file is not parsed again"
        );

        std::fs::write(&path, GOOD).unwrap();
        assert_eq!(source.refresh().await, Refresh::Loaded);
        assert_eq!(source.refresh().await, Refresh::Unchanged);
        assert_eq!(
            source.parses(),
            2,
            "an unchanged good file is not parsed again"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn the_error_names_locations_and_kinds_never_the_content() {
        let dir = std::env::temp_dir().join(format!("gec-source-redact-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("desired.yaml");
        let mut source = Source::new(Location::File(path.clone()), None);
        let name = path.display().to_string();

        std::fs::write(&path, "version: s3cr3t\npassword: hunter2\n").unwrap();
        assert_eq!(source.refresh().await, Refresh::Failed);
        let error = source.error().unwrap().to_owned();
        assert!(error.starts_with(&format!("{name}:1:")), "{error}");
        assert!(
            error.contains("validate"),
            "a hint to run validate: {error}"
        );
        for secret in ["s3cr3t", "hunter2", "password", "version"] {
            assert!(!error.contains(secret), "{secret} leaked: {error}");
        }

        std::fs::write(&path, b"version: 1\ntargets:\n  - region: us-\xffeast-1\n").unwrap();
        assert_eq!(source.refresh().await, Refresh::Failed);
        let error = source.error().unwrap();
        assert!(
            error.starts_with(&format!("{name}:3:16: encoding")),
            "{error}"
        );
        assert!(!error.contains("region"), "{error}");

        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
        assert_eq!(source.refresh().await, Refresh::Failed);
        assert_eq!(
            source.error(),
            Some(format!("{name}: cannot read: not_a_regular_file").as_str())
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn many_errors_are_listed_up_to_a_bound() {
        let errors = ConfigErrors {
            file: "d.yaml".into(),
            errors: (1..=25)
                .map(|line| ConfigError {
                    line,
                    column: 1,
                    kind: gec_model::desired::ConfigErrorKind::UnknownField,
                    path: "secretKeyName".into(),
                    message: "unknown key \"secretKeyName\"".into(),
                    suggestion: None,
                })
                .collect(),
        };
        let text = redact(&errors);
        assert!(text.starts_with("d.yaml:1:1: unknown_field; "), "{text}");
        assert!(text.contains("d.yaml:10:1: "), "{text}");
        assert!(!text.contains("d.yaml:11:1"), "{text}");
        assert!(text.contains("and 15 more"), "{text}");
        assert!(!text.contains("secretKeyName"), "{text}");
    }
}
