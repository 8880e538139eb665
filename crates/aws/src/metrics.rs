//! Counting every AWS request attempt (an SDK interceptor), for `aws_requests_total` and
//! `aws_request_duration_seconds`.

use std::time::Instant;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

/// The AWS request metrics, registered into a registry the caller owns.
#[derive(Debug, Clone)]
pub struct AwsMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
}

impl AwsMetrics {
    /// Creates the metrics and registers them.
    ///
    /// # Errors
    /// A metric of the same name is already registered.
    pub fn register(registry: &Registry, prefix: &str) -> Result<Self, prometheus::Error> {
        let requests = IntCounterVec::new(
            Opts::new(
                format!("{prefix}aws_requests_total"),
                "AWS API request attempts, by outcome",
            ),
            &["service", "operation", "outcome"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                format!("{prefix}aws_request_duration_seconds"),
                "Duration of AWS API request attempts",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["service", "operation"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        Ok(AwsMetrics { requests, duration })
    }

    pub(crate) fn interceptor(&self) -> RequestMetrics {
        RequestMetrics(self.clone())
    }
}

/// The interceptor that feeds [`AwsMetrics`].
#[derive(Debug, Clone)]
pub(crate) struct RequestMetrics(AwsMetrics);

#[derive(Debug, Clone)]
struct AttemptStart(Instant);

impl Storable for AttemptStart {
    type Storer = StoreReplace<Self>;
}

impl Intercept for RequestMetrics {
    fn name(&self) -> &'static str {
        "gec-request-metrics"
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state()
            .store_put(AttemptStart(Instant::now()));
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, operation) = cfg
            .load::<Metadata>()
            .map(|m| (service_label(m.service()), m.name().to_owned()))
            .unwrap_or(("unknown", "unknown".to_owned()));
        let outcome = match context.response() {
            Some(resp) if resp.status().is_success() => "ok",
            Some(resp) => {
                let status = resp.status().as_u16();
                let body = resp.body().bytes().unwrap_or_default();
                let error_type = resp.headers().get("x-amzn-ErrorType").unwrap_or_default();
                if status == 429 || is_throttling(error_type.as_bytes()) || is_throttling(body) {
                    "throttled"
                } else {
                    "error"
                }
            }
            None => "error",
        };
        self.0
            .requests
            .with_label_values(&[service, &operation, outcome])
            .inc();
        if let Some(start) = cfg.load::<AttemptStart>() {
            self.0
                .duration
                .with_label_values(&[service, &operation])
                .observe(start.0.elapsed().as_secs_f64());
        }
        Ok(())
    }
}

/// A bounded service label from the SDK's service name.
fn service_label(service: &str) -> &'static str {
    let s = service.to_ascii_lowercase();
    // CodeDeploy before ECS: the SDK names it `CodeDeploy`, which no other rule matches,
    // but it is checked first so that a later rule cannot take it.
    if s.contains("codedeploy") {
        "codedeploy"
    } else if s.contains("guardduty") {
        "guardduty"
    } else if s.contains("tagging") {
        "tagging"
    } else if s.contains("sts") || s.contains("token") {
        "sts"
    } else if s.contains("ecs") || s.contains("container") {
        "ecs"
    } else {
        "other"
    }
}

fn is_throttling(text: &[u8]) -> bool {
    const CODES: &[&[u8]] = &[
        b"Throttl",
        b"TooManyRequests",
        b"RequestLimitExceeded",
        b"Rate exceeded",
    ];
    CODES.iter().any(|c| text.windows(c.len()).any(|w| w == *c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_sdk_service_has_its_own_label() {
        // (the service name in the SDK's operation metadata, the label)
        let rows = [
            ("ECS", "ecs"),
            ("GuardDuty", "guardduty"),
            ("Resource Groups Tagging API", "tagging"),
            ("STS", "sts"),
            ("CodeDeploy", "codedeploy"),
            ("something new", "other"),
        ];
        for (service, label) in rows {
            assert_eq!(service_label(service), label, "{service}");
        }
    }
}
