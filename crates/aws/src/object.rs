//! Reading the desired state from an S3 object, with a conditional GET on its ETag.

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
    /// # Errors
    /// The object or bucket does not exist, access is denied, or S3 cannot be reached.
    pub async fn fetch(
        &self,
        at: &ObjectLocation,
        etag: Option<&str>,
    ) -> Result<Fetched, AwsError> {
        let mut request = self.s3.get_object().bucket(&at.bucket).key(&at.key);
        if let Some(etag) = etag {
            request = request.if_none_match(etag);
        }
        match request.send().await {
            Ok(out) => {
                let etag = out.e_tag().map(str::to_owned);
                let bytes = out
                    .body
                    .collect()
                    .await
                    .map_err(|e| {
                        AwsError::new(ErrorKind::Transient, "GetObject", None, e.to_string())
                    })?
                    .into_bytes()
                    .to_vec();
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
                Err(error)
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
