//! Reading the desired state from an S3 object, with a conditional GET on its ETag and a
//! size limit checked before the body is downloaded.

use aws_sdk_s3::error::ProvideErrorMetadata;

use crate::error::{classify, ErrorKind};
use crate::{AwsContext, AwsError};

/// An `s3://bucket/key` location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectLocation {
    /// Bucket name.
    pub bucket: String,
    /// Object key.
    pub key: String,
}

impl ObjectLocation {
    /// Parses `s3://bucket/key`; `None` for anything else (a file path).
    pub fn parse(text: &str) -> Option<Self> {
        let rest = text.strip_prefix("s3://")?;
        let (bucket, key) = rest.split_once('/')?;
        (!bucket.is_empty() && !key.is_empty()).then(|| ObjectLocation {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        })
    }
}

impl std::fmt::Display for ObjectLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

/// What a conditional GET found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// The object still has the ETag we gave.
    NotModified,
    /// The object's bytes and ETag.
    Object {
        /// Content.
        bytes: Vec<u8>,
        /// ETag, for the next conditional GET.
        etag: Option<String>,
    },
}

/// The most bytes a desired-state object may have (the parser's own limit).
pub const MAX_OBJECT_BYTES: usize = gec_model::desired::MAX_FILE_BYTES;

/// Why the desired-state object could not be fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// S3 refused or could not be reached.
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// The object is larger than [`MAX_OBJECT_BYTES`]; its body was not (or not wholly)
    /// downloaded.
    #[error("the object is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
}

impl FetchError {
    /// A stable, content-free name of the failure, for `/status` and change detection.
    pub fn kind(&self) -> &'static str {
        match self {
            FetchError::Aws(e) => e.kind.as_str(),
            FetchError::TooLarge { .. } => "too_large",
        }
    }
}

/// An S3 client for the desired-state object.
#[derive(Debug, Clone)]
pub struct ObjectClient {
    s3: aws_sdk_s3::Client,
}

impl AwsContext {
    /// A client for reading the desired state from S3 (ambient credentials and region).
    pub fn object_client(&self) -> ObjectClient {
        ObjectClient {
            s3: aws_sdk_s3::Client::new(self.base()),
        }
    }
}

impl ObjectClient {
    /// Fetches the object unless it still has `etag`.
    ///
    /// # Guarantees
    /// An object whose `Content-Length` is over [`MAX_OBJECT_BYTES`] is refused before its
    /// body is read; the body is read in chunks and abandoned as soon as it passes the
    /// limit, so a lying or missing length cannot make it read more.
    ///
    /// # Errors
    /// The object or bucket does not exist, access is denied, S3 cannot be reached, or
    /// the object is larger than [`MAX_OBJECT_BYTES`].
    pub async fn fetch(
        &self,
        at: &ObjectLocation,
        etag: Option<&str>,
    ) -> Result<Fetched, FetchError> {
        let mut request = self.s3.get_object().bucket(&at.bucket).key(&at.key);
        if let Some(etag) = etag {
            request = request.if_none_match(etag);
        }
        match request.send().await {
            Ok(out) => {
                let limit = MAX_OBJECT_BYTES;
                let declared = out.content_length().unwrap_or(0);
                if !matches!(usize::try_from(declared), Ok(n) if n <= limit) {
                    return Err(FetchError::TooLarge { limit });
                }
                let etag = out.e_tag().map(str::to_owned);
                let mut body = out.body;
                let mut bytes = Vec::new();
                while let Some(chunk) = body.next().await {
                    let chunk = chunk.map_err(|e| {
                        AwsError::new(ErrorKind::Transient, "GetObject", None, e.to_string())
                    })?;
                    if bytes.len() + chunk.len() > limit {
                        return Err(FetchError::TooLarge { limit });
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(Fetched::Object { bytes, etag })
            }
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 304) => {
                Ok(Fetched::NotModified)
            }
            Err(e) => {
                let not_found = matches!(e.code(), Some("NoSuchKey" | "NoSuchBucket"))
                    || e.raw_response().is_some_and(|r| r.status().as_u16() == 404);
                let mut error = classify("GetObject", e);
                if not_found {
                    error.kind = ErrorKind::NotFound;
                }
                Err(error.into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls_parse_and_paths_do_not() {
        assert_eq!(
            ObjectLocation::parse("s3://bucket/dir/desired.yaml"),
            Some(ObjectLocation {
                bucket: "bucket".into(),
                key: "dir/desired.yaml".into()
            })
        );
        for text in [
            "desired.yaml",
            "/etc/desired.yaml",
            "s3://bucket",
            "s3:///key",
            "s3://bucket/",
        ] {
            assert_eq!(ObjectLocation::parse(text), None, "{text}");
        }
    }
}
