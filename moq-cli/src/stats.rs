//! `--stats`: a live line on stderr and a summary at exit.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Counters shared by whoever moves frames.
#[derive(Debug)]
pub struct Stats {
    frames: AtomicU64,
    bytes: AtomicU64,
    /// The current group plus one (0: none yet).
    group: AtomicU64,
    started: Instant,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            frames: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            group: AtomicU64::new(0),
            started: Instant::now(),
        }
    }
}

impl Stats {
    /// Fresh counters.
    pub fn new() -> Arc<Stats> {
        Arc::new(Stats::default())
    }

    /// Counts one frame of `size` bytes in group `group`.
    pub fn frame(&self, group: u64, size: usize) {
        self.frames.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(size as u64, Ordering::Relaxed);
        self.group.store(group + 1, Ordering::Relaxed);
    }

    /// Frames counted so far.
    pub fn frames(&self) -> u64 {
        self.frames.load(Ordering::Relaxed)
    }

    /// Bytes counted so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    fn line(&self, rate: Option<(u64, u64, Duration)>) -> String {
        let frames = self.frames();
        let bytes = self.bytes();
        let group = match self.group.load(Ordering::Relaxed) {
            0 => "-".to_string(),
            g => (g - 1).to_string(),
        };
        let (df, db, dt) = rate.unwrap_or((frames, bytes, self.started.elapsed()));
        let secs = dt.as_secs_f64().max(1e-3);
        format!(
            "frames {frames}  bytes {}  rate {:.1} frames/s {}/s  group {group}",
            human(bytes),
            df as f64 / secs,
            human((db as f64 / secs) as u64)
        )
    }

    /// Prints a live line every second until dropped (the task is aborted).
    pub fn spawn_live(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let stats = self.clone();
        tokio::spawn(async move {
            let tty = std::io::stderr().is_terminal();
            let mut interval = tokio::time::interval(Duration::from_secs(1));
            interval.tick().await;
            let (mut frames, mut bytes, mut at) = (0, 0, Instant::now());
            loop {
                interval.tick().await;
                let now = Instant::now();
                let (f, b) = (stats.frames(), stats.bytes());
                let line = stats.line(Some((f - frames, b - bytes, now - at)));
                (frames, bytes, at) = (f, b, now);
                let mut err = std::io::stderr().lock();
                let _ = if tty {
                    write!(err, "\r\x1b[2K{line}")
                } else {
                    writeln!(err, "{line}")
                };
                let _ = err.flush();
            }
        })
    }

    /// Prints the summary line.
    pub fn summary(&self) {
        let tty = std::io::stderr().is_terminal();
        let prefix = if tty { "\r\x1b[2K" } else { "" };
        eprintln!(
            "{prefix}total: {} in {:.1}s",
            self.line(None),
            self.started.elapsed().as_secs_f64()
        );
    }
}

/// Bytes in B / KiB / MiB / GiB.
fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Runs the live line while alive; prints the summary when finished.
pub struct StatsGuard {
    stats: Arc<Stats>,
    live: Option<tokio::task::JoinHandle<()>>,
}

impl StatsGuard {
    /// Starts the live line if `enabled`.
    pub fn start(stats: &Arc<Stats>, enabled: bool) -> StatsGuard {
        StatsGuard {
            stats: stats.clone(),
            live: enabled.then(|| stats.spawn_live()),
        }
    }
}

impl Drop for StatsGuard {
    fn drop(&mut self) {
        if let Some(live) = self.live.take() {
            live.abort();
            self.stats.summary();
        }
    }
}
