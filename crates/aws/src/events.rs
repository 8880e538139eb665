//! Putting the controller's audit records on an EventBridge event bus (`--events-bus`).

use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use crate::error::classify;
use crate::{AwsContext, AwsError};

/// The `source` of every event the controller puts. A custom source: EventBridge refuses
/// sources that start with `aws.` from anyone but AWS services.
pub const EVENT_SOURCE: &str = "guardduty-ecs-controller";

/// The most entries one `PutEvents` call takes (EventBridge API Reference: PutEvents,
/// `Entries`: "Array Members: Minimum number of 1 item. Maximum number of 10 items").
pub const PUT_EVENTS_BATCH: usize = 10;

/// One event to put: its detail type, the detail (a JSON object, as text) and the ARNs
/// it concerns (EventBridge's `resources`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventEntry {
    /// EventBridge's `detail-type`.
    pub detail_type: &'static str,
    /// The detail: a JSON object.
    pub detail: String,
    /// ARNs the event is about (may be empty).
    pub resources: Vec<String>,
}

/// What one `PutEvents` call did with its entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PutOutcome {
    /// Entries EventBridge accepted.
    pub sent: usize,
    /// Entries EventBridge refused (`FailedEntryCount`).
    pub failed: usize,
    /// The error code of the first refused entry, if any.
    pub first_error: Option<String>,
}

/// A client for one event bus. Cheap to clone.
#[derive(Debug, Clone)]
pub struct EventBus {
    client: aws_sdk_eventbridge::Client,
    name: String,
}

impl AwsContext {
    /// A client that puts events on the bus `name` (a name or ARN) with the ambient
    /// credentials and region, and the controller's retry and timeout settings.
    pub fn event_bus(&self, name: &str) -> EventBus {
        EventBus {
            client: aws_sdk_eventbridge::Client::new(self.base()),
            name: name.to_owned(),
        }
    }
}

impl EventBus {
    /// The bus name or ARN.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the bus exists, by `DescribeEventBus` (PutEvents cannot tell: EventBridge
    /// accepts entries for a bus that does not exist, answers with event ids and drops
    /// them).
    ///
    /// # Errors
    /// Any failure but `ResourceNotFoundException` (which is `Ok(false)`): access denied,
    /// throttled, EventBridge could not be reached.
    pub async fn exists(&self) -> Result<bool, AwsError> {
        match self
            .client
            .describe_event_bus()
            .name(&self.name)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => {
                let e = classify("DescribeEventBus", e);
                if e.code.as_deref() == Some("ResourceNotFoundException") {
                    Ok(false)
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Puts `entries` (at most [`PUT_EVENTS_BATCH`]; the rest is not sent) with source
    /// [`EVENT_SOURCE`].
    ///
    /// # Errors
    /// The call failed as a whole: the bus does not exist (`ResourceNotFoundException`),
    /// access is denied, EventBridge could not be reached. Entries refused one by one are
    /// counted in the [`PutOutcome`] instead.
    pub async fn put(&self, entries: &[EventEntry]) -> Result<PutOutcome, AwsError> {
        let batch = &entries[..entries.len().min(PUT_EVENTS_BATCH)];
        if batch.is_empty() {
            return Ok(PutOutcome::default());
        }
        let mut request = self.client.put_events();
        for e in batch {
            request = request.entries(
                PutEventsRequestEntry::builder()
                    .source(EVENT_SOURCE)
                    .detail_type(e.detail_type)
                    .detail(&e.detail)
                    .set_resources((!e.resources.is_empty()).then(|| e.resources.clone()))
                    .event_bus_name(&self.name)
                    .build(),
            );
        }
        let out = request.send().await.map_err(|e| classify("PutEvents", e))?;
        let failed = usize::try_from(out.failed_entry_count())
            .unwrap_or(0)
            .min(batch.len());
        let first_error = out
            .entries()
            .iter()
            .find_map(|e| e.error_code())
            .map(|c| c.chars().take(128).collect());
        Ok(PutOutcome {
            sent: batch.len() - failed,
            failed,
            first_error,
        })
    }
}
