//! AWS SDK errors, classified once at the adapter boundary.

use std::fmt;

use aws_sdk_ecs::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;

/// What kind of failure an AWS call had; drives retry and is the metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorKind {
    /// Rate exceeded; back off.
    Throttled,
    /// Missing permission or bad credentials; retrying will not help.
    AccessDenied,
    /// The resource is gone.
    NotFound,
    /// Timeouts, connection failures, 5xx; retrying may help.
    Transient,
    /// Anything else (validation errors, ...).
    Other,
}

impl ErrorKind {
    /// Name used in logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Throttled => "throttled",
            ErrorKind::AccessDenied => "access_denied",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Transient => "transient",
            ErrorKind::Other => "other",
        }
    }
}

/// A failed AWS call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation} failed ({}): {message}", kind.as_str())]
pub struct AwsError {
    /// Classification.
    pub kind: ErrorKind,
    /// The API operation, e.g. `TagResources`.
    pub operation: &'static str,
    /// The service's error code, when it sent one.
    pub code: Option<String>,
    /// What AWS said.
    pub message: String,
}

impl AwsError {
    /// An error that did not come from the SDK (e.g. a per-resource failure in a batch).
    pub fn new(
        kind: ErrorKind,
        operation: &'static str,
        code: Option<String>,
        message: impl Into<String>,
    ) -> Self {
        AwsError {
            kind,
            operation,
            code,
            message: message.into(),
        }
    }
}

impl AwsError {
    /// Whether this failure proves that a write was **not** applied, so that sending it
    /// again cannot apply it twice: AWS answered with an error (throttled, access denied,
    /// not found, any other 4xx), or the request never left (no credentials, a request
    /// that could not be built). A [`ErrorKind::Transient`] failure proves nothing: after
    /// a timeout, a dropped connection, a 5xx or an unreadable answer the service may
    /// have applied the request (a connection that failed before sending is transient
    /// too; treating it as unknown only costs a re-read).
    pub fn proves_not_applied(&self) -> bool {
        self.kind != ErrorKind::Transient
    }
}

const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

const ACCESS_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "MissingAuthenticationToken",
];

const NOT_FOUND_CODES: &[&str] = &[
    "ClusterNotFoundException",
    "ServiceNotFoundException",
    "ResourceNotFoundException",
    "NotFoundException",
    // CodeDeploy: the application or deployment group named in the request is gone.
    "ApplicationDoesNotExistException",
    "DeploymentGroupDoesNotExistException",
    "DeploymentDoesNotExistException",
];

/// Whether a dispatch failure came from the credentials provider, not the network.
fn is_credentials_failure(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if e.to_string().to_ascii_lowercase().contains("credentials") {
            return true;
        }
        next = e.source();
    }
    false
}

/// Classifies an SDK error of any operation.
/// Whether the write fence's interceptor refused the request (anywhere in the chain).
fn is_not_leader(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if e.is::<crate::fence::NotLeader>() {
            return true;
        }
        source = e.source();
    }
    false
}

pub(crate) fn classify<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let (kind, code, message) = match &err {
        // The write fence refused the request before it was sent (see `crate::fence`).
        _ if is_not_leader(&err) => (
            ErrorKind::Other,
            Some(crate::NOT_LEADER.to_owned()),
            DisplayChain(&err).to_string(),
        ),
        SdkError::TimeoutError(_) => (ErrorKind::Transient, None, "timed out".to_owned()),
        SdkError::DispatchFailure(_) if is_credentials_failure(&err) => {
            // The request never left: the credentials provider (AssumeRole for a target
            // with a roleArn) failed. Its STS error code is only in the source chain.
            let chain = DisplayChain(&err).to_string();
            let code = ACCESS_CODES
                .iter()
                .chain(THROTTLING_CODES)
                .find(|c| chain.contains(*c))
                .map(|c| (*c).to_owned());
            (
                code.as_deref()
                    .map_or(ErrorKind::Transient, |c| kind_of(Some(c), 0)),
                code,
                format!("cannot get credentials (AssumeRole for this target): {chain}"),
            )
        }
        SdkError::DispatchFailure(e) => {
            let what = if e.is_timeout() {
                "timed out connecting"
            } else {
                "connection failed"
            };
            (
                ErrorKind::Transient,
                None,
                format!("{what}: {}", DisplayChain(&err)),
            )
        }
        SdkError::ResponseError(_) => {
            (ErrorKind::Transient, None, "unreadable response".to_owned())
        }
        SdkError::ServiceError(ctx) => {
            let code = ctx.err().code().map(str::to_owned);
            let status = ctx.raw().status().as_u16();
            let message = ctx.err().message().unwrap_or("no message").to_owned();
            (kind_of(code.as_deref(), status), code, message)
        }
        _ => (ErrorKind::Other, None, DisplayChain(&err).to_string()),
    };
    AwsError {
        kind,
        operation,
        code,
        message,
    }
}

fn kind_of(code: Option<&str>, status: u16) -> ErrorKind {
    match code {
        Some(c) if THROTTLING_CODES.contains(&c) => ErrorKind::Throttled,
        Some(c) if ACCESS_CODES.contains(&c) => ErrorKind::AccessDenied,
        Some(c) if NOT_FOUND_CODES.contains(&c) => ErrorKind::NotFound,
        _ if status == 429 => ErrorKind::Throttled,
        _ if status == 401 || status == 403 => ErrorKind::AccessDenied,
        _ if status >= 500 => ErrorKind::Transient,
        _ if status == 404 => ErrorKind::NotFound,
        _ => ErrorKind::Other,
    }
}

/// Prints an error with its sources, once each.
struct DisplayChain<'a, E: std::error::Error>(&'a E);

impl<E: std::error::Error> fmt::Display for DisplayChain<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        let mut last = self.0.to_string();
        while let Some(s) = source {
            let text = s.to_string();
            if !last.contains(&text) {
                write!(f, ": {text}")?;
            }
            last = text;
            source = s.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses_classify_as_documented() {
        let rows = [
            (
                "throttling code",
                Some("ThrottlingException"),
                400,
                ErrorKind::Throttled,
            ),
            ("429 without code", None, 429, ErrorKind::Throttled),
            (
                "access denied code",
                Some("AccessDeniedException"),
                400,
                ErrorKind::AccessDenied,
            ),
            ("403 without code", None, 403, ErrorKind::AccessDenied),
            (
                "missing cluster",
                Some("ClusterNotFoundException"),
                400,
                ErrorKind::NotFound,
            ),
            (
                "service unavailable",
                Some("ServiceUnavailable"),
                503,
                ErrorKind::Transient,
            ),
            (
                "bad request",
                Some("BadRequestException"),
                400,
                ErrorKind::Other,
            ),
        ];
        for (label, code, status, kind) in rows {
            assert_eq!(kind_of(code, status), kind, "{label}");
        }
    }

    #[test]
    fn codedeploy_errors_classify_and_its_refusals_prove_nothing_was_started() {
        // (CodeDeploy's error code, HTTP status, kind). CodeDeploy answers 400 for all of
        // them (awsJson1_1), so the code decides.
        let rows = [
            ("ThrottlingException", ErrorKind::Throttled),
            ("AccessDeniedException", ErrorKind::AccessDenied),
            ("ApplicationDoesNotExistException", ErrorKind::NotFound),
            ("DeploymentGroupDoesNotExistException", ErrorKind::NotFound),
            ("DeploymentLimitExceededException", ErrorKind::Other),
            ("InvalidRevisionException", ErrorKind::Other),
            ("InvalidLoadBalancerInfoException", ErrorKind::Other),
            ("InvalidDeploymentConfigNameException", ErrorKind::Other),
            ("RevisionRequiredException", ErrorKind::Other),
        ];
        for (code, kind) in rows {
            assert_eq!(kind_of(Some(code), 400), kind, "{code}");
            let e = AwsError::new(kind_of(Some(code), 400), "CreateDeployment", None, "x");
            assert!(
                e.proves_not_applied(),
                "{code}: CodeDeploy refused the request, no deployment started"
            );
        }
        assert!(
            !AwsError::new(kind_of(None, 503), "CreateDeployment", None, "x").proves_not_applied(),
            "a 5xx proves nothing"
        );
    }

    #[test]
    fn only_an_answer_that_rejected_the_request_proves_a_write_was_not_applied() {
        // (label, kind, proves "not applied")
        let rows = [
            (
                "throttled: rejected before any change",
                ErrorKind::Throttled,
                true,
            ),
            ("access denied", ErrorKind::AccessDenied, true),
            ("not found", ErrorKind::NotFound, true),
            ("another 4xx (validation)", ErrorKind::Other, true),
            (
                "timeout, dropped connection or 5xx",
                ErrorKind::Transient,
                false,
            ),
        ];
        for (label, kind, proves) in rows {
            let e = AwsError::new(kind, "UpdateService", None, "x");
            assert_eq!(e.proves_not_applied(), proves, "{label}");
        }
    }
}
