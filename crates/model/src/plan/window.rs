//! Redeploy allow windows (`redeploy.windows`): whether a redeploy may start now. Each
//! window is read on the wall clock of its `timeZone` (UTC without one), with jiff and
//! its bundled copy of the IANA time zone database, so every host (the distroless image
//! has no /usr/share/zoneinfo) evaluates a window the same way.

use jiff::civil::{DateTime, Weekday as CivilWeekday};
use jiff::Timestamp;

use crate::desired::{parse_hhmm, Window};

/// Whether a redeploy may start at `now_ms` (Unix ms). No windows: always. A window opens
/// on each of its days at `start` and closes at `end` (exclusive), both on the wall clock
/// of its `timeZone`; an `end` before the `start` closes the next day, so
/// `{days: [fri], start: "22:00", end: "02:00"}` is open Friday 22:00 to Saturday 02:00.
///
/// Daylight saving time follows the wall clock: on the day clocks go forward an hour,
/// a window `01:00`–`05:00` is open 01:00–02:00 and 03:00–05:00 local (three hours), and
/// a start in the skipped hour opens at 03:00; on the day they go back, it is open from
/// the first 01:00 to 05:00, both 02:00–03:00 hours included (five hours).
///
/// Windows that do not parse or name an unknown time zone never open (validation rejects
/// them before a plan is made).
pub fn window_open(windows: &[Window], now_ms: i64) -> bool {
    if windows.is_empty() {
        return true;
    }
    let now = timestamp(now_ms);
    windows.iter().any(|w| open_at(w, now))
}

fn open_at(w: &Window, now: Timestamp) -> bool {
    let (Some(start), Some(end), Some(zone)) = (parse_hhmm(&w.start), parse_hhmm(&w.end), w.zone())
    else {
        return false;
    };
    let local: DateTime = zone.to_datetime(now);
    let minute =
        u16::from(local.hour().unsigned_abs()) * 60 + u16::from(local.minute().unsigned_abs());
    let today = local.weekday();
    let on = |day: CivilWeekday| w.days.iter().any(|d| d.civil() == day);
    if start < end {
        on(today) && (start..end).contains(&minute)
    } else {
        // Runs past midnight: the evening part today, or the morning part of a window
        // that opened yesterday.
        (on(today) && minute >= start) || (on(today.previous()) && minute < end)
    }
}

/// `now_ms` as a timestamp, clamped to the years jiff can represent (-9999 to 9999): a
/// clock or reply past them reads as the nearest end, never a panic.
fn timestamp(now_ms: i64) -> Timestamp {
    Timestamp::from_millisecond(now_ms).unwrap_or(if now_ms < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;

    use super::*;
    use crate::desired::{time_zone, Weekday};

    fn window(days: &[Weekday], start: &str, end: &str) -> Window {
        Window {
            days: days.to_vec(),
            start: start.to_owned(),
            end: end.to_owned(),
            time_zone: None,
        }
    }

    fn in_zone(zone: &str, w: Window) -> Window {
        Window {
            time_zone: Some(zone.to_owned()),
            ..w
        }
    }

    /// Unix ms of a wall-clock time in a zone (the earlier one when it occurs twice).
    fn local_ms(zone: &str, y: i16, mo: i8, d: i8, hh: i8, mm: i8) -> i64 {
        let tz = time_zone(Some(zone)).expect("a known zone");
        date(y, mo, d)
            .at(hh, mm, 0, 0)
            .to_zoned_datetime(tz)
            .expect("a representable time")
            .timestamp()
            .as_millisecond()
    }

    /// `hh:mm` UTC, `day_offset` days after Friday 2026-11-27.
    fn at(day_offset: i64, hh: i8, mm: i8) -> i64 {
        local_ms("UTC", 2026, 11, 27, hh, mm) + day_offset * 86_400_000
    }

    #[test]
    fn the_reference_date_is_a_friday() {
        assert_eq!(at(0, 0, 0), 1_795_737_600_000);
        assert!(window_open(
            &[window(&[Weekday::Fri], "00:00", "00:01")],
            at(0, 0, 0)
        ));
        assert!(!window_open(
            &[window(&[Weekday::Thu], "00:00", "23:59")],
            at(0, 0, 0)
        ));
    }

    #[test]
    fn windows_open_on_their_days_between_start_and_end() {
        let w = [window(&[Weekday::Tue, Weekday::Wed], "09:00", "17:00")];
        assert!(window_open(&w, at(4, 9, 0)), "Tuesday 09:00 opens");
        assert!(window_open(&w, at(5, 16, 59)), "Wednesday 16:59 is open");
        assert!(!window_open(&w, at(5, 17, 0)), "end is exclusive");
        assert!(!window_open(&w, at(4, 8, 59)), "before start");
        assert!(!window_open(&w, at(0, 12, 0)), "Friday is not listed");
        assert!(window_open(&[], at(0, 3, 0)), "no windows: always open");
        let all_day = [window(&[Weekday::Fri], "00:00", "24:00")];
        assert!(window_open(&all_day, at(0, 23, 59)), "24:00 ends the day");
        assert!(
            !window_open(&all_day, at(1, 0, 0)),
            "Saturday is not listed"
        );
    }

    #[test]
    fn a_window_ending_before_it_starts_runs_past_midnight() {
        let w = [window(&[Weekday::Fri], "22:00", "02:00")];
        assert!(window_open(&w, at(0, 23, 30)), "Friday night");
        assert!(window_open(&w, at(1, 1, 59)), "Saturday early morning");
        assert!(!window_open(&w, at(1, 2, 0)), "Saturday 02:00 closed");
        assert!(
            !window_open(&w, at(0, 1, 0)),
            "Friday early morning belongs to Thursday"
        );
        assert!(!window_open(&w, at(1, 23, 0)), "Saturday night not listed");
        let sunday = [window(&[Weekday::Sun], "23:00", "01:00")];
        assert!(
            window_open(&sunday, at(3, 0, 30)),
            "Monday 00:30 belongs to Sunday's window"
        );
    }

    #[test]
    fn a_window_in_a_time_zone_follows_its_wall_clock() {
        // Friday 2026-11-27 09:00 in Berlin (UTC+1 in winter) is 08:00 UTC.
        let w = [in_zone(
            "Europe/Berlin",
            window(&[Weekday::Fri], "09:00", "17:00"),
        )];
        assert!(!window_open(&w, at(0, 7, 59)));
        assert!(window_open(&w, at(0, 8, 0)));
        assert!(window_open(&w, at(0, 15, 59)));
        assert!(!window_open(&w, at(0, 16, 0)));
        // Saturday 07:00 in Auckland (UTC+13) is still Friday 18:00 UTC: the local day
        // decides.
        let w = [in_zone(
            "Pacific/Auckland",
            window(&[Weekday::Sat], "07:00", "08:00"),
        )];
        assert!(window_open(&w, at(0, 18, 0)));
        assert!(!window_open(&w, at(1, 18, 0)), "Sunday in Auckland");
    }

    #[test]
    fn a_window_across_the_spring_forward_keeps_its_wall_clock_hours() {
        // Sunday 2026-03-29, Berlin: 02:00 CET becomes 03:00 CEST; the window is open
        // 01:00-02:00 and 03:00-05:00 local, three real hours.
        let berlin = "Europe/Berlin";
        let w = [in_zone(berlin, window(&[Weekday::Sun], "01:00", "05:00"))];
        let ms = |hh, mm| local_ms(berlin, 2026, 3, 29, hh, mm);
        assert!(!window_open(&w, ms(0, 59)));
        assert!(window_open(&w, ms(1, 0)), "opens 01:00 CET = 00:00 UTC");
        assert_eq!(ms(1, 0), local_ms("UTC", 2026, 3, 29, 0, 0));
        assert!(window_open(&w, ms(1, 59)));
        // The next minute after 01:59 CET is 03:00 CEST.
        assert_eq!(ms(3, 0) - ms(1, 59), 60_000);
        assert!(window_open(&w, ms(3, 0)));
        assert!(window_open(&w, ms(4, 59)));
        assert!(!window_open(&w, ms(5, 0)), "closes 05:00 CEST = 03:00 UTC");
        assert_eq!(ms(5, 0), local_ms("UTC", 2026, 3, 29, 3, 0));
        // A start in the skipped hour opens at the first minute after it.
        let w = [in_zone(berlin, window(&[Weekday::Sun], "02:30", "05:00"))];
        assert!(!window_open(&w, ms(1, 59)));
        assert!(window_open(&w, ms(3, 0)));
    }

    #[test]
    fn a_window_across_the_fall_back_covers_the_repeated_hour_twice() {
        // Sunday 2026-10-25, Berlin: 03:00 CEST becomes 02:00 CET; 02:00-03:00 comes
        // twice and the window is open five real hours, 01:00 CEST (23:00 UTC on
        // Saturday) to 05:00 CET (04:00 UTC).
        let berlin = "Europe/Berlin";
        let w = [in_zone(berlin, window(&[Weekday::Sun], "01:00", "05:00"))];
        let utc = |d, hh, mm| local_ms("UTC", 2026, 10, d, hh, mm);
        assert!(!window_open(&w, utc(24, 22, 59)), "00:59 CEST");
        assert!(window_open(&w, utc(24, 23, 0)), "01:00 CEST");
        assert!(window_open(&w, utc(25, 0, 30)), "the first 02:30 (CEST)");
        assert!(window_open(&w, utc(25, 1, 30)), "the second 02:30 (CET)");
        assert!(window_open(&w, utc(25, 3, 59)), "04:59 CET");
        assert!(!window_open(&w, utc(25, 4, 0)), "05:00 CET");
        // The same window in UTC would have closed at 05:00 UTC and opened at 01:00 UTC.
        let plain = [window(&[Weekday::Sun], "01:00", "05:00")];
        assert!(!window_open(&plain, utc(24, 23, 0)));
    }

    #[test]
    fn an_unknown_time_zone_never_opens() {
        let w = [in_zone(
            "Mars/Olympus_Mons",
            window(&[Weekday::Fri], "00:00", "24:00"),
        )];
        assert!(!window_open(&w, at(0, 12, 0)));
        assert!(time_zone(Some("Mars/Olympus_Mons")).is_none());
        assert!(time_zone(Some("europe/berlin")).is_some(), "any case");
    }

    #[test]
    fn instants_past_the_representable_years_do_not_panic() {
        let w = [window(&[Weekday::Fri], "00:00", "24:00")];
        for ms in [i64::MIN, i64::MAX, -1, 0] {
            let _ = window_open(&w, ms);
        }
    }

    #[test]
    fn weekdays_name_the_same_days_as_jiff() {
        // 2026-11-23 is a Monday.
        for (i, day) in [
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
            Weekday::Sat,
            Weekday::Sun,
        ]
        .into_iter()
        .enumerate()
        {
            let i = i8::try_from(i).expect("seven days");
            assert_eq!(date(2026, 11, 23 + i).weekday(), day.civil());
        }
    }
}
