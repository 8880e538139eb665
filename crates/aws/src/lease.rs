//! The lease item of `run --lease-table` in DynamoDB: a record-version-number (RVN) lease
//! as in AWS's `amazon-dynamodb-lock-client`, through conditional writes only.
//!
//! One item per controller deployment, partition key `key` (a string; [`DEFAULT_LEASE_KEY`]
//! unless `--lease-key` says otherwise, so two fleets can share a table):
//!
//! | attribute | type | meaning |
//! |---|---|---|
//! | `key` | S | the partition key |
//! | `owner` | S | the replica id of the holder |
//! | `rvn` | S | the record version number: a random value the holder rewrites on every heartbeat |
//! | `leaseDurationMs` | N | the holder's lease duration: how long a contender must see one `rvn` unchanged |
//! | `expiresAt` | N | Unix seconds, the writer's wall clock + the longer of 10 × the lease duration and 7 days ([`MIN_TTL`]): DynamoDB TTL, **only** so that an abandoned item is garbage-collected. Never read: correctness trusts no clock across hosts |
//!
//! The TTL is long on purpose: DynamoDB deletes an item once its `expiresAt` is past by
//! **its** clock, so a holder whose wall clock is slow by more than the TTL would write an
//! item already due for deletion, and a contender that then finds no item acquires at
//! once while the holder's fence is still open. Seven days is far beyond any clock error
//! that NTP-synchronised hosts show, and an abandoned item costs nothing meanwhile.
//!
//! Every write is conditional, and a failed condition (`ConditionalCheckFailedException`)
//! is the typed outcome [`LeaseError::Lost`] — someone else holds or took the item — never
//! a generic error. Except when the item that failed the condition (returned with
//! `ReturnValuesOnConditionCheckFailure: ALL_OLD`) is already the one the write puts,
//! owner and new RVN: an earlier attempt of the same call landed and its answer was lost
//! (the SDK retries a 5xx or a timeout), so the write succeeded. Other failures are classified as every AWS error of the adapter
//! ([`AwsError`]).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;

use crate::error::classify;
use crate::{AwsContext, AwsError};

/// The item key when `--lease-key` is not given.
pub const DEFAULT_LEASE_KEY: &str = "guardduty-ecs-controller";
/// Longest owner id or RVN read back from the item; a longer one is cut (hostile input:
/// the table is writable by others).
pub const MAX_LEASE_TEXT: usize = 128;
/// Most RVNs one renew or release may name (the one written last and those of renews
/// whose answer was lost).
pub const MAX_OLD_RVNS: usize = 8;
/// The TTL attribute (`expiresAt`) is at least this many lease durations in the future.
pub const TTL_LEASES: u32 = 10;
/// ... and at least this long (7 days): the TTL only collects garbage, and a short one
/// would let a holder with a slow clock write an item DynamoDB deletes under it.
pub const MIN_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

const KEY: &str = "key";
const OWNER: &str = "owner";
const RVN: &str = "rvn";
const DURATION: &str = "leaseDurationMs";
const EXPIRES: &str = "expiresAt";

/// The lease item as read.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaseRecord {
    /// The holder's replica id, safe to print: at most [`MAX_LEASE_TEXT`] characters,
    /// control and invisible formatting characters (bidi overrides, zero-width) as `?`.
    pub owner: String,
    /// The record version number, to show (at most [`MAX_LEASE_TEXT`] characters; empty
    /// when missing or not a string).
    pub rvn: String,
    /// The holder's lease duration, when the item states a valid one.
    pub lease_duration: Option<Duration>,
    /// The `rvn` attribute exactly as read: what a contender watches and what
    /// [`LeaseTable::take_over`] is conditional on.
    pub version: RawRvn,
}

/// An item's `rvn` attribute exactly as read (missing, of any type, of any length), so
/// that a takeover's condition matches the item as it was read even when its `rvn` is
/// not one a replica writes: an odd value never blocks takeover.
#[derive(Debug, Clone, PartialEq)]
pub struct RawRvn(Option<AttributeValue>);

impl RawRvn {
    /// The RVN `rvn`, as a replica writes it.
    pub fn text(rvn: &str) -> Self {
        RawRvn(Some(AttributeValue::S(rvn.to_owned())))
    }
}

/// Why a lease write did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseError {
    /// The condition failed: the item is not in the state the write assumed (another
    /// replica holds it, took it over, or it is gone).
    #[error("the lease is held or was taken by another replica")]
    Lost,
    /// The call failed; whether it was applied is unknown unless
    /// [`AwsError::proves_not_applied`].
    #[error(transparent)]
    Aws(#[from] AwsError),
}

/// The lease table's client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LeaseTable {
    client: aws_sdk_dynamodb::Client,
    table: String,
    key: String,
    lease_duration: Duration,
}

impl LeaseTable {
    /// A client of `table` (item `key`) with the environment's region, credentials,
    /// endpoint and app name (see [`AwsContext::with_app_name`]). Each call is limited to
    /// `call_timeout` in all (2 attempts at most), so that a heartbeat's answer comes
    /// before the next one is due.
    pub fn new(
        ctx: &AwsContext,
        table: &str,
        key: &str,
        lease_duration: Duration,
        call_timeout: Duration,
    ) -> Self {
        let mut config = aws_sdk_dynamodb::config::Builder::from(ctx.base())
            .retry_config(RetryConfig::standard().with_max_attempts(2))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(call_timeout)
                    .operation_attempt_timeout(call_timeout)
                    .operation_timeout(call_timeout)
                    .build(),
            );
        if let Some(m) = ctx.metrics() {
            config = config.interceptor(m.interceptor());
        }
        LeaseTable {
            client: aws_sdk_dynamodb::Client::from_conf(config.build()),
            table: table.to_owned(),
            key: key.to_owned(),
            lease_duration,
        }
    }

    /// A table over `client` as it is (no timeouts or retries added): for unit tests with
    /// canned answers.
    #[doc(hidden)]
    pub fn from_client(
        client: aws_sdk_dynamodb::Client,
        table: &str,
        key: &str,
        lease_duration: Duration,
    ) -> Self {
        LeaseTable {
            client,
            table: table.to_owned(),
            key: key.to_owned(),
            lease_duration,
        }
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The item's key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Reads the item (strongly consistent). `None`: no item, the lease is free.
    ///
    /// # Errors
    /// The read failed.
    pub async fn read(&self) -> Result<Option<LeaseRecord>, AwsError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(KEY, AttributeValue::S(self.key.clone()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("GetItem", e))?;
        Ok(out.item.map(|item| record_of(&item)))
    }

    /// Creates the item as `owner` with `rvn`, only if there is none.
    ///
    /// # Errors
    /// [`LeaseError::Lost`] if an item exists.
    pub async fn acquire_new(&self, owner: &str, rvn: &str) -> Result<(), LeaseError> {
        self.put(owner, rvn)
            .condition_expression("attribute_not_exists(#k)")
            .expression_attribute_names("#k", KEY)
            .send_conditional(owner, rvn)
            .await
    }

    /// Takes the item over from a holder whose RVN `seen` did not change for a whole lease
    /// duration: writes `owner` and `new_rvn` only if the item's `rvn` is still `seen`
    /// (the attribute as read: equal to the same value, or still missing).
    ///
    /// # Errors
    /// [`LeaseError::Lost`] if the RVN changed (the holder is alive) or the item is gone.
    pub async fn take_over(
        &self,
        owner: &str,
        new_rvn: &str,
        seen: &RawRvn,
    ) -> Result<(), LeaseError> {
        let put = self
            .put(owner, new_rvn)
            .expression_attribute_names("#r", RVN);
        let put = match &seen.0 {
            Some(v) => put
                .condition_expression("#r = :seen")
                .expression_attribute_values(":seen", v.clone()),
            None => put
                .condition_expression("attribute_exists(#k) AND attribute_not_exists(#r)")
                .expression_attribute_names("#k", KEY),
        };
        put.send_conditional(owner, new_rvn).await
    }

    /// The heartbeat: rewrites the RVN to `new_rvn`, only if `owner` still holds the item
    /// with one of `old_rvns`: the RVN it wrote last, and those of earlier renews whose
    /// answer was lost (they may have landed). At most [`MAX_OLD_RVNS`] are used.
    ///
    /// # Errors
    /// [`LeaseError::Lost`] if another replica took the item over (or it is gone).
    pub async fn renew(
        &self,
        owner: &str,
        old_rvns: &[String],
        new_rvn: &str,
    ) -> Result<(), LeaseError> {
        let (names, values) = rvn_in(old_rvns);
        self.put(owner, new_rvn)
            .condition_expression(format!("#o = :me AND #r IN ({names})"))
            .expression_attribute_names("#o", OWNER)
            .expression_attribute_names("#r", RVN)
            .set_expression_attribute_values(Some(with_me(values, owner)))
            .send_conditional(owner, new_rvn)
            .await
    }

    /// Gives the lease up: deletes the item, only if `owner` holds it with one of `rvns`
    /// (as [`LeaseTable::renew`]). A contender's next read finds no item and acquires at
    /// once.
    ///
    /// # Errors
    /// [`LeaseError::Lost`] if the item is not ours (any more).
    pub async fn release(&self, owner: &str, rvns: &[String]) -> Result<(), LeaseError> {
        let (names, values) = rvn_in(rvns);
        self.client
            .delete_item()
            .table_name(&self.table)
            .key(KEY, AttributeValue::S(self.key.clone()))
            .condition_expression(format!("#o = :me AND #r IN ({names})"))
            .expression_attribute_names("#o", OWNER)
            .expression_attribute_names("#r", RVN)
            .set_expression_attribute_values(Some(with_me(values, owner)))
            .send()
            .await
            .map(drop)
            .map_err(delete_error)
    }

    fn put(
        &self,
        owner: &str,
        rvn: &str,
    ) -> aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder {
        let ms = u64::try_from(self.lease_duration.as_millis()).unwrap_or(u64::MAX);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let ttl = expires_at(now, self.lease_duration);
        self.client
            .put_item()
            .table_name(&self.table)
            .item(KEY, AttributeValue::S(self.key.clone()))
            .item(OWNER, AttributeValue::S(owner.to_owned()))
            .item(RVN, AttributeValue::S(rvn.to_owned()))
            .item(DURATION, AttributeValue::N(ms.to_string()))
            .item(EXPIRES, AttributeValue::N(ttl.to_string()))
    }
}

/// The `expiresAt` of an item written at `now` (Unix seconds): `now` + the longer of
/// [`TTL_LEASES`] lease durations and [`MIN_TTL`].
fn expires_at(now: u64, lease_duration: Duration) -> u64 {
    now.saturating_add(
        lease_duration
            .saturating_mul(TTL_LEASES)
            .max(MIN_TTL)
            .as_secs(),
    )
}

/// The placeholders (`:r0, :r1, ...`) and values of an `IN` list of at most
/// [`MAX_OLD_RVNS`] RVNs (an empty list matches no RVN: `:r0` is then an RVN no one writes).
fn rvn_in(rvns: &[String]) -> (String, std::collections::HashMap<String, AttributeValue>) {
    let mut values = std::collections::HashMap::new();
    let mut names = Vec::new();
    for (i, rvn) in rvns.iter().take(MAX_OLD_RVNS).enumerate() {
        names.push(format!(":r{i}"));
        values.insert(format!(":r{i}"), AttributeValue::S(rvn.clone()));
    }
    if names.is_empty() {
        names.push(":r0".to_owned());
        values.insert(":r0".to_owned(), AttributeValue::S("-".to_owned()));
    }
    (names.join(", "), values)
}

fn with_me(
    mut values: std::collections::HashMap<String, AttributeValue>,
    owner: &str,
) -> std::collections::HashMap<String, AttributeValue> {
    values.insert(":me".to_owned(), AttributeValue::S(owner.to_owned()));
    values
}

/// A conditional `PutItem` of the lease that writes `owner` and `rvn`.
trait SendConditional {
    /// Sends it asking for the item as it was when the condition fails
    /// (`ReturnValuesOnConditionCheckFailure: ALL_OLD`). A failed condition is
    /// [`LeaseError::Lost`], unless that item is already `owner`'s with `rvn`: then an
    /// earlier attempt of this very call landed (the SDK retried after a lost answer, a
    /// 5xx or a timeout) and the write succeeded. `rvn` is 128 random bits: no one else
    /// writes it.
    async fn send_conditional(self, owner: &str, rvn: &str) -> Result<(), LeaseError>;
}

impl SendConditional for aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder {
    async fn send_conditional(self, owner: &str, rvn: &str) -> Result<(), LeaseError> {
        let e = match self
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        match e.as_service_error() {
            Some(PutItemError::ConditionalCheckFailedException(c)) => {
                if c.item().is_some_and(|item| holds(item, owner, rvn)) {
                    Ok(())
                } else {
                    Err(LeaseError::Lost)
                }
            }
            _ => Err(LeaseError::Aws(classify("PutItem", e))),
        }
    }
}

/// Whether `item` is `owner`'s with `rvn`, exactly (raw attributes, not as
/// [`record_of`] bounds them).
fn holds(item: &std::collections::HashMap<String, AttributeValue>, owner: &str, rvn: &str) -> bool {
    matches!(item.get(OWNER), Some(AttributeValue::S(o)) if o == owner)
        && matches!(item.get(RVN), Some(AttributeValue::S(r)) if r == rvn)
}

fn delete_error(e: SdkError<DeleteItemError, HttpResponse>) -> LeaseError {
    if matches!(
        e.as_service_error(),
        Some(DeleteItemError::ConditionalCheckFailedException(_))
    ) {
        return LeaseError::Lost;
    }
    LeaseError::Aws(classify("DeleteItem", e))
}

/// The record of an item, every field bounded: a missing or odd `owner`/`rvn` reads as
/// empty text (still a version a contender can watch), a missing or unparsable duration as
/// `None`.
fn record_of(item: &std::collections::HashMap<String, AttributeValue>) -> LeaseRecord {
    let text = |name: &str| -> String {
        match item.get(name) {
            Some(AttributeValue::S(s)) => s.chars().take(MAX_LEASE_TEXT).map(printable).collect(),
            _ => String::new(),
        }
    };
    let lease_duration = match item.get(DURATION) {
        Some(AttributeValue::N(n)) if n.len() <= 20 => {
            n.parse::<u64>().ok().map(Duration::from_millis)
        }
        _ => None,
    };
    LeaseRecord {
        owner: text(OWNER),
        rvn: text(RVN),
        lease_duration,
        version: RawRvn(item.get(RVN).cloned()),
    }
}

/// `c`, or `?` when printing it could alter a terminal or a log line (control
/// characters) or hide what the text says (bidi overrides and isolates, zero-width and
/// other invisible formatting characters).
fn printable(c: char) -> char {
    let invisible = matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}');
    if c.is_control() || invisible {
        '?'
    } else {
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::error::ErrorMetadata;
    use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
    use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
    use aws_smithy_mocks::{mock, MockResponseInterceptor, Rule, RuleMode};
    use std::collections::HashMap;

    /// A table whose every call is answered by `rule` (never leaves the process).
    fn mocked(rule: &Rule) -> LeaseTable {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .http_client(aws_smithy_mocks::create_mock_http_client())
            .interceptor(
                MockResponseInterceptor::new()
                    .rule_mode(RuleMode::MatchAny)
                    .with_rule(rule),
            )
            .build();
        LeaseTable {
            client: aws_sdk_dynamodb::Client::from_conf(config),
            table: "lease".into(),
            key: DEFAULT_LEASE_KEY.into(),
            lease_duration: Duration::from_secs(20),
        }
    }

    fn condition_failed() -> ConditionalCheckFailedException {
        ConditionalCheckFailedException::builder()
            .message("The conditional request failed")
            .build()
    }

    #[tokio::test]
    async fn a_failed_condition_is_lost_and_other_failures_are_classified() {
        let put_lost = mock!(aws_sdk_dynamodb::Client::put_item)
            .then_error(|| PutItemError::ConditionalCheckFailedException(condition_failed()));
        let t = mocked(&put_lost);
        assert_eq!(t.acquire_new("a", "1").await, Err(LeaseError::Lost));
        assert_eq!(
            t.take_over("a", "2", &RawRvn::text("1")).await,
            Err(LeaseError::Lost)
        );
        assert_eq!(
            t.renew("a", &["1".into()], "2").await,
            Err(LeaseError::Lost)
        );

        let delete_lost = mock!(aws_sdk_dynamodb::Client::delete_item)
            .then_error(|| DeleteItemError::ConditionalCheckFailedException(condition_failed()));
        assert_eq!(
            mocked(&delete_lost).release("a", &["1".into()]).await,
            Err(LeaseError::Lost)
        );

        let throttled = mock!(aws_sdk_dynamodb::Client::put_item).then_error(|| {
            PutItemError::generic(
                ErrorMetadata::builder()
                    .code("ProvisionedThroughputExceededException")
                    .message("slow down")
                    .build(),
            )
        });
        match mocked(&throttled).renew("a", &["1".into()], "2").await {
            Err(LeaseError::Aws(e)) => {
                assert_eq!(e.kind, crate::ErrorKind::Throttled);
                assert_eq!(e.operation, "PutItem");
            }
            other => panic!("a throttle is an AWS error, not lost: {other:?}"),
        }
    }

    #[tokio::test]
    async fn an_item_reads_as_its_record_and_none_is_free() {
        let held = mock!(aws_sdk_dynamodb::Client::get_item).then_output(|| {
            GetItemOutput::builder()
                .item(OWNER, AttributeValue::S("replica-a".into()))
                .item(RVN, AttributeValue::S("abc".into()))
                .item(DURATION, AttributeValue::N("4000".into()))
                .build()
        });
        assert_eq!(
            mocked(&held).read().await,
            Ok(Some(LeaseRecord {
                owner: "replica-a".into(),
                rvn: "abc".into(),
                lease_duration: Some(Duration::from_secs(4)),
                version: RawRvn::text("abc"),
            }))
        );
        let free = mock!(aws_sdk_dynamodb::Client::get_item)
            .then_output(|| GetItemOutput::builder().build());
        assert_eq!(mocked(&free).read().await, Ok(None));
    }

    #[tokio::test]
    async fn a_renew_accepts_any_of_the_rvns_that_may_have_landed() {
        let put = mock!(aws_sdk_dynamodb::Client::put_item)
            .match_requests(|r| {
                let v = r.expression_attribute_values().cloned().unwrap_or_default();
                r.condition_expression() == Some("#o = :me AND #r IN (:r0, :r1)")
                    && v.get(":r0") == Some(&AttributeValue::S("old".into()))
                    && v.get(":r1") == Some(&AttributeValue::S("unsure".into()))
                    && v.get(":me") == Some(&AttributeValue::S("a".into()))
            })
            .then_output(|| {
                aws_sdk_dynamodb::operation::put_item::PutItemOutput::builder().build()
            });
        let olds = ["old".to_owned(), "unsure".to_owned()];
        assert_eq!(mocked(&put).renew("a", &olds, "new").await, Ok(()));
        let (names, values) = rvn_in(&vec!["x".to_owned(); 100]);
        assert_eq!(values.len(), MAX_OLD_RVNS, "bounded");
        assert_eq!(names.matches(':').count(), MAX_OLD_RVNS);
    }

    #[tokio::test]
    async fn a_failed_condition_on_our_own_new_rvn_is_a_write_that_landed() {
        // What AWS answers the SDK's second attempt of a renew whose first one landed
        // (the answer was a 5xx): the condition fails on the item the first one wrote.
        let item = |rvn: &str| {
            HashMap::from([
                (KEY.to_owned(), AttributeValue::S(DEFAULT_LEASE_KEY.into())),
                (OWNER.to_owned(), AttributeValue::S("a".into())),
                (RVN.to_owned(), AttributeValue::S(rvn.into())),
            ])
        };
        let failed_on = |rvn: &'static str| {
            mock!(aws_sdk_dynamodb::Client::put_item)
                .match_requests(|r| {
                    r.return_values_on_condition_check_failure()
                        == Some(&ReturnValuesOnConditionCheckFailure::AllOld)
                })
                .then_error(move || {
                    PutItemError::ConditionalCheckFailedException(
                        ConditionalCheckFailedException::builder()
                            .message("The conditional request failed")
                            .set_item(Some(item(rvn)))
                            .build(),
                    )
                })
        };
        let landed = mocked(&failed_on("new"));
        assert_eq!(landed.renew("a", &["old".into()], "new").await, Ok(()));
        assert_eq!(landed.acquire_new("a", "new").await, Ok(()));
        assert_eq!(
            landed.take_over("a", "new", &RawRvn::text("old")).await,
            Ok(())
        );
        assert_eq!(
            landed.renew("b", &["old".into()], "new").await,
            Err(LeaseError::Lost),
            "another owner"
        );
        let other = mocked(&failed_on("someone-elses"));
        assert_eq!(
            other.renew("a", &["old".into()], "new").await,
            Err(LeaseError::Lost)
        );
    }

    #[tokio::test]
    async fn a_takeover_is_conditional_on_the_rvn_exactly_as_read_however_odd() {
        let long = "r".repeat(MAX_LEASE_TEXT + 50);
        let odd = [
            (None, "attribute_exists(#k) AND attribute_not_exists(#r)"),
            (Some(AttributeValue::N("12".into())), "#r = :seen"),
            (Some(AttributeValue::S(long.clone())), "#r = :seen"),
        ];
        for (value, condition) in odd {
            let mut item = HashMap::from([(OWNER.to_owned(), AttributeValue::S("z".into()))]);
            if let Some(v) = &value {
                item.insert(RVN.to_owned(), v.clone());
            }
            let read = record_of(&item);
            let expected = value.clone();
            let put = mock!(aws_sdk_dynamodb::Client::put_item)
                .match_requests(move |r| {
                    let seen = r
                        .expression_attribute_values()
                        .and_then(|v| v.get(":seen"))
                        .cloned();
                    r.condition_expression() == Some(condition) && seen == expected
                })
                .then_output(|| {
                    aws_sdk_dynamodb::operation::put_item::PutItemOutput::builder().build()
                });
            assert_eq!(
                mocked(&put).take_over("a", "new", &read.version).await,
                Ok(()),
                "{value:?}"
            );
        }
    }

    #[tokio::test]
    async fn the_ttl_is_at_least_seven_days_whatever_the_lease() {
        assert_eq!(
            expires_at(1_000, Duration::from_secs(2)),
            1_000 + 7 * 24 * 3600
        );
        assert_eq!(
            expires_at(1_000, Duration::from_secs(600_000)),
            1_000 + 6_000_000,
            "10 leases when that is longer"
        );
        assert_eq!(expires_at(u64::MAX, Duration::from_secs(2)), u64::MAX);
        // What a write sends, with the shortest lease (2 s): 7 days, not 20 s.
        let floor = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + MIN_TTL.as_secs();
        let put = mock!(aws_sdk_dynamodb::Client::put_item)
            .match_requests(move |r| {
                let sent = match r.item().and_then(|i| i.get(EXPIRES)) {
                    Some(AttributeValue::N(n)) => n.parse::<u64>().unwrap_or(0),
                    _ => 0,
                };
                sent >= floor && sent <= floor + 60
            })
            .then_output(|| {
                aws_sdk_dynamodb::operation::put_item::PutItemOutput::builder().build()
            });
        let mut t = mocked(&put);
        t.lease_duration = Duration::from_secs(2);
        assert_eq!(t.acquire_new("a", "1").await, Ok(()));
    }

    #[test]
    fn an_owner_from_the_table_is_safe_to_print() {
        let item = HashMap::from([(
            OWNER.to_owned(),
            AttributeValue::S("evil\u{1b}[31m\u{202e}x\n\u{200b}é".into()),
        )]);
        assert_eq!(record_of(&item).owner, "evil?[31m?x??é");
    }

    #[test]
    fn a_hostile_item_reads_bounded() {
        let mut item = HashMap::new();
        item.insert(OWNER.to_owned(), AttributeValue::S("x".repeat(10_000)));
        item.insert(RVN.to_owned(), AttributeValue::N("12".into()));
        item.insert(DURATION.to_owned(), AttributeValue::N("1".repeat(400)));
        let r = record_of(&item);
        assert_eq!(r.owner.len(), MAX_LEASE_TEXT);
        assert_eq!(r.rvn, "", "an RVN of the wrong type reads as empty");
        assert_eq!(r.lease_duration, None);
        item.insert(DURATION.to_owned(), AttributeValue::N("20000".into()));
        assert_eq!(
            record_of(&item).lease_duration,
            Some(Duration::from_secs(20))
        );
    }
}
