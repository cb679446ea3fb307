//! `moq clock`: the classic smoke test, in the reference clock's format
//! (moq-clock), so that either end can be the other implementation. Track
//! `seconds` has one group per minute: its first frame is the minute
//! (`YYYY-MM-DD HH:MM:`), then one frame per second with the seconds (`SS`).
//! The subscriber prints the minute and the seconds as one line per second.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use moq_lite::model::{OriginProducer, Path, Track, TrackProducer};

use crate::connection::Connection;
use crate::format::Format;
use crate::publish::{Tracks, serve};
use crate::subscribe::{SubscribeOptions, subscribe_to};

/// The clock's track name.
pub const TRACK: &str = "seconds";

/// Publishes the clock as `broadcast` until interrupted.
pub async fn publish(connection: &Connection, broadcast: &str) -> anyhow::Result<()> {
    let origin = OriginProducer::new();
    let path = Path::new(broadcast);
    let producer = origin.create_broadcast(path.clone())?;
    let track = producer.create_track(Track::new(TRACK));
    let tracks: Tracks = Arc::new(std::sync::Mutex::new(vec![track.clone()]));
    serve(connection, &origin, &path, tick(track), &tracks, Duration::ZERO).await
}

/// Subscribes to the clock, printing `count` lines (or all of them).
pub async fn subscribe(
    connection: &Connection,
    broadcast: &str,
    count: Option<u64>,
    timeout: Duration,
) -> anyhow::Result<()> {
    let mut options = SubscribeOptions::new(broadcast);
    options.track = TRACK.into();
    options.format = Format::Lines;
    options.count = count;
    options.timeout = timeout;
    options.group_prefix = true;
    // A clock is live: the time now, not the minutes the relay still holds.
    options.start = crate::subscribe::Start::Latest;
    subscribe_to(connection, options, tokio::io::stdout()).await
}

/// The minute of `unix` as `YYYY-MM-DD HH:MM:` (UTC), the first frame of
/// each group.
pub fn format_minute(unix: u64) -> String {
    let days = unix / 86_400;
    let secs = unix % 86_400;
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:",
        secs / 3600,
        secs / 60 % 60
    )
}

/// The seconds of `unix` as `SS`, one frame each second.
pub fn format_second(unix: u64) -> String {
    format!("{:02}", unix % 60)
}

/// Days since 1970-01-01 to a (year, month, day) date (Howard Hinnant's
/// algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// One frame a second, a new group each minute.
async fn tick(mut track: TrackProducer) -> anyhow::Result<()> {
    let mut interval = tokio::time::interval(Duration::from_secs(1));
    let mut group = None;
    let mut minute = None;
    loop {
        interval.tick().await;
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        if minute != Some(now / 60) {
            if let Some(old) = group.take() {
                let _ = moq_lite::model::GroupProducer::finish(old);
            }
            let mut next = track.append_group()?;
            next.write_frame(format_minute(now).into())?;
            group = Some(next);
            minute = Some(now / 60);
        }
        if let Some(group) = group.as_mut() {
            group.write_frame(format_second(now).into())?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_dates() {
        assert_eq!(format_minute(0), "1970-01-01 00:00:");
        assert_eq!(format_minute(951_782_400), "2000-02-29 00:00:");
        assert_eq!(format_minute(1_700_000_000), "2023-11-14 22:13:");
        assert_eq!(format_second(1_700_000_000), "20");
        assert_eq!(format_second(59), "59");
    }
}
