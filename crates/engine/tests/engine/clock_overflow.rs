//! Durations meet clocks with checked arithmetic (issue 11): no timestamp a reply carries
//! and no duration a file or flag can hold overflows a deadline or panics.

use std::time::Duration;

use gec_engine::{Clock, Requeue};

#[test]
fn a_wake_at_the_end_of_time_seen_from_before_the_epoch_does_not_overflow() {
    let poll = Duration::from_secs(5);
    // (label, wake, now, the least the sleep may be)
    let rows = [
        (
            "far future, far past",
            Requeue::At(i64::MAX),
            i64::MIN,
            Duration::from_millis(u64::MAX >> 1),
        ),
        (
            "far past, far future",
            Requeue::At(i64::MIN),
            i64::MAX,
            poll,
        ),
        ("now", Requeue::At(0), 0, poll),
    ];
    for (label, wake, now_ms, least) in rows {
        assert!(
            wake.delay(now_ms, poll).is_some_and(|d| d >= least),
            "{label}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_clock_that_starts_at_the_end_of_time_stays_there() {
    let clock = Clock::tokio_at(i64::MAX - 1);
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(clock.now_ms(), i64::MAX);
}
