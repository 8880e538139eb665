//! The desired-state file and its last known good content.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use gec_aws::{Fetched, ObjectClient, ObjectLocation};
use gec_model::DesiredState;
use sha2::{Digest, Sha256};

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

    /// The current file's problem, if it is not valid.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// Reads the file (or object) again. Content that is missing, empty, unreadable or
    /// invalid never replaces the last known good state.
    pub async fn refresh(&mut self) -> Refresh {
        let name = self.location.to_string();
        let bytes = match &self.location {
            Location::File(path) => std::fs::read(path).map_err(|e| {
                (
                    format!("unreadable: {}", e.kind()),
                    format!("{name}: cannot read the file: {e}"),
                )
            }),
            Location::Object(at) => match &self.objects {
                None => Err(("no client".to_owned(), format!("{name}: no S3 client"))),
                Some(client) => match client.fetch(at, self.etag.as_deref()).await {
                    Ok(Fetched::NotModified) => return Refresh::Unchanged,
                    Ok(Fetched::Object { bytes, etag }) => {
                        self.etag = etag;
                        Ok(bytes)
                    }
                    Err(e) => {
                        self.etag = None;
                        Err((
                            format!("fetch: {}", e.kind.as_str()),
                            format!("{name}: cannot fetch the object: {e}"),
                        ))
                    }
                },
            },
        };
        let (fingerprint, parsed) = match bytes {
            Err((fingerprint, message)) => (fingerprint, Err(message)),
            Ok(bytes) => {
                let digest = hex(&Sha256::digest(&bytes));
                let parsed = match String::from_utf8(bytes) {
                    Err(_) => Err(format!("{name}: the file is not UTF-8 text")),
                    Ok(text) => gec_model::desired::parse(&name, &text)
                        .map(|d| (d, digest.clone()))
                        .map_err(|e| e.to_string()),
                };
                (digest, parsed)
            }
        };
        if self.last_attempt.as_deref() == Some(fingerprint.as_str()) {
            return Refresh::Unchanged;
        }
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
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
