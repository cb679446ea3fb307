//! CPU time and RSS of a process (or one thread) from Linux's `/proc`.
//!
//! CPU is `utime + stime` from `/proc/PID/stat` in clock ticks, converted at
//! 100 ticks per second (Linux's `USER_HZ` on every mainstream architecture);
//! RSS is `VmRSS` from `/proc/PID/status`.

use std::path::{Path, PathBuf};

use crate::stats::ProcessFigures;

const TICKS_PER_SECOND: f64 = 100.0;

/// One reading.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// CPU time used so far (user + system), in seconds, at 1/100 s
    /// resolution.
    pub cpu_s: f64,
    /// Resident set size (`VmRSS`), in bytes; for a thread, its whole
    /// process's.
    pub rss_bytes: u64,
}

/// What to read: a process, or one thread of this process.
#[derive(Clone, Debug)]
pub struct Probe {
    /// The process ID (for a thread probe, the ID of its process).
    pub pid: u32,
    dir: PathBuf,
}

impl Probe {
    /// A process.
    pub fn process(pid: u32) -> Probe {
        Probe {
            pid,
            dir: PathBuf::from(format!("/proc/{pid}")),
        }
    }

    /// The calling thread (resolved now, readable from any thread later).
    pub fn this_thread() -> Option<Probe> {
        let link = std::fs::read_link("/proc/thread-self").ok()?;
        let dir = Path::new("/proc").join(link);
        Some(Probe {
            pid: std::process::id(),
            dir,
        })
    }

    /// Reads CPU and RSS now.
    pub fn sample(&self) -> std::io::Result<Sample> {
        let stat = std::fs::read_to_string(self.dir.join("stat"))?;
        // Fields after the command name, which is in parentheses and may
        // hold spaces: state is field 3, utime 14, stime 15.
        let rest = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest)
            .ok_or_else(|| std::io::Error::other("malformed stat"))?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let tick = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
        let cpu_s = (tick(11) + tick(12)) as f64 / TICKS_PER_SECOND;
        let status = std::fs::read_to_string(self.dir.join("status"))?;
        let rss_kb = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0);
        Ok(Sample {
            cpu_s,
            rss_bytes: rss_kb * 1024,
        })
    }
}

/// The figures from readings before the first connection (`idle`), at the
/// window's start and end.
#[allow(clippy::too_many_arguments)]
pub fn figures(
    probe: &Probe,
    idle: Sample,
    start: Sample,
    end: Sample,
    seconds: f64,
    delivered_bytes: u64,
    connections: u64,
    shared_with_load: bool,
) -> ProcessFigures {
    let cpu_s = (end.cpu_s - start.cpu_s).max(0.0);
    ProcessFigures {
        pid: probe.pid,
        shared_with_load,
        cpu_s,
        cpu_s_per_gb: (delivered_bytes > 0).then(|| cpu_s / (delivered_bytes as f64 / 1e9)),
        cpu_pct: if seconds > 0.0 {
            cpu_s * 100.0 / seconds
        } else {
            0.0
        },
        rss_start_bytes: idle.rss_bytes,
        rss_end_bytes: end.rss_bytes,
        rss_per_connection_bytes: (connections > 0)
            .then(|| (end.rss_bytes as f64 - idle.rss_bytes as f64) / connections as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = Probe::process(std::process::id()).sample().unwrap();
        assert!(me.rss_bytes > 0);
        let thread = Probe::this_thread().unwrap().sample().unwrap();
        assert!(thread.cpu_s >= 0.0);
    }
}
