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

/// The most bytes one `PutEvents` call may carry, counted as EventBridge counts them
/// (EventBridge User Guide, "Calculating PutEvents event entry size": the UTF-8 bytes of
/// `Source`, `DetailType`, `Detail` and each resource, 14 for a `Time`): 256 KiB.
pub const MAX_PUT_EVENTS_BYTES: usize = 256 * 1024;

impl EventEntry {
    /// Its size as EventBridge counts it towards [`MAX_PUT_EVENTS_BYTES`] (no `Time` is
    /// sent).
    pub fn size(&self) -> usize {
        EVENT_SOURCE.len()
            + self.detail_type.len()
            + self.detail.len()
            + self.resources.iter().map(String::len).sum::<usize>()
    }
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
    /// [`EVENT_SOURCE`], in as many calls as [`MAX_PUT_EVENTS_BYTES`] needs; an entry
    /// larger than that alone is counted failed without being sent.
    ///
    /// # Errors
    /// The first call failed as a whole: access is denied, EventBridge could not be
    /// reached. Entries refused one by one, and those of a later call that failed, are
    /// counted in the [`PutOutcome`] instead.
    pub async fn put(&self, entries: &[EventEntry]) -> Result<PutOutcome, AwsError> {
        let batch = &entries[..entries.len().min(PUT_EVENTS_BATCH)];
        let (chunks, too_large) = chunks(batch);
        let mut total = PutOutcome {
            failed: too_large,
            first_error: (too_large > 0).then(|| "EntryTooLarge".to_owned()),
            ..PutOutcome::default()
        };
        let mut first = true;
        for chunk in chunks {
            self.put_chunk(chunk, &mut total, &mut first).await?;
        }
        Ok(total)
    }

    /// One `PutEvents` call; its outcome added to `total`. An error is returned only for
    /// the first call of a [`EventBus::put`]: a later one counts its entries failed.
    async fn put_chunk(
        &self,
        chunk: Vec<&EventEntry>,
        total: &mut PutOutcome,
        first: &mut bool,
    ) -> Result<(), AwsError> {
        if chunk.is_empty() {
            return Ok(());
        }
        let was_first = std::mem::replace(first, false);
        let mut request = self.client.put_events();
        for e in &chunk {
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
        let out = match request.send().await {
            Ok(out) => out,
            Err(e) => {
                let e = classify("PutEvents", e);
                if was_first {
                    return Err(e);
                }
                total.failed += chunk.len();
                total.first_error.get_or_insert_with(|| {
                    e.code.clone().unwrap_or_else(|| "PutEvents".to_owned())
                });
                return Ok(());
            }
        };
        let failed = usize::try_from(out.failed_entry_count())
            .unwrap_or(0)
            .min(chunk.len());
        if total.first_error.is_none() {
            total.first_error = out
                .entries()
                .iter()
                .find_map(|e| e.error_code())
                .map(|c| c.chars().take(128).collect());
        }
        total.sent += chunk.len() - failed;
        total.failed += failed;
        Ok(())
    }
}

/// `entries` in order, split into calls of at most [`MAX_PUT_EVENTS_BYTES`], and how many
/// entries are too large to send at all.
fn chunks(entries: &[EventEntry]) -> (Vec<Vec<&EventEntry>>, usize) {
    let mut out: Vec<Vec<&EventEntry>> = Vec::new();
    let mut too_large = 0;
    let mut bytes = 0;
    for e in entries {
        let size = e.size();
        if size > MAX_PUT_EVENTS_BYTES {
            too_large += 1;
            continue;
        }
        match out.last_mut() {
            Some(chunk) if bytes + size <= MAX_PUT_EVENTS_BYTES => chunk.push(e),
            _ => {
                out.push(vec![e]);
                bytes = 0;
            }
        }
        bytes += size;
    }
    (out, too_large)
}

#[cfg(test)]
mod tests {
    use super::{chunks, EventEntry, MAX_PUT_EVENTS_BYTES};

    fn entry(detail_bytes: usize) -> EventEntry {
        EventEntry {
            detail_type: "GuardDuty ECS Controller Write",
            detail: "x".repeat(detail_bytes),
            resources: vec!["arn:aws:ecs:us-east-1:123456789012:cluster/apps".to_owned()],
        }
    }

    #[test]
    fn entries_are_split_into_calls_within_the_put_events_size_limit() {
        let overhead = entry(0).size();
        let small = || entry(1000);
        // Ten small entries: one call.
        let ten: Vec<EventEntry> = (0..10).map(|_| small()).collect();
        let (calls, too_large) = chunks(&ten);
        assert_eq!((calls.len(), too_large), (1, 0));
        // Three entries of 100 KiB: two fit (200 KiB), the third needs a second call.
        let big: Vec<EventEntry> = (0..3).map(|_| entry(100 * 1024)).collect();
        let (calls, too_large) = chunks(&big);
        assert_eq!(
            calls.iter().map(Vec::len).collect::<Vec<_>>(),
            [2, 1],
            "{too_large}"
        );
        for call in &calls {
            assert!(call.iter().map(|e| e.size()).sum::<usize>() <= MAX_PUT_EVENTS_BYTES);
        }
        // Exactly the limit fits; one byte more is never sent.
        let exact = entry(MAX_PUT_EVENTS_BYTES - overhead);
        let over = entry(MAX_PUT_EVENTS_BYTES - overhead + 1);
        let mixed = [small(), over, exact, small()];
        let (calls, too_large) = chunks(&mixed);
        assert_eq!(too_large, 1);
        assert_eq!(
            calls.iter().map(Vec::len).collect::<Vec<_>>(),
            [1, 1, 1],
            "the entry of exactly the limit goes alone"
        );
    }
}
