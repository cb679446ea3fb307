//! The load's knobs: flags, TOML presets, ranges rolled per connection.
//!
//! Every knob is a [`Knobs`] field; a flag given on the command line wins
//! over the preset's value, which wins over the default. Per-connection knobs
//! take a range, `low..high` (both inclusive), rolled once per connection
//! with the run's seed; a single value is the range of one.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

/// A duration: `10s`, `500ms`, `2m`, `1h`, or a plain number of seconds.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub struct Dur(pub Duration);

impl FromStr for Dur {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        // One parser for every duration flag in the workspace.
        moq_relay::parse_duration(text).map(Dur)
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Seconds(f64),
            Text(String),
        }
        match Repr::deserialize(d)? {
            Repr::Seconds(v) => v.to_string().parse().map_err(serde::de::Error::custom),
            Repr::Text(v) => v.parse().map_err(serde::de::Error::custom),
        }
    }
}

impl std::fmt::Display for Dur {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}s", self.0.as_secs_f64())
    }
}

/// A value that [`Range`] can roll between two bounds.
pub trait Rollable: Copy + PartialOrd + FromStr + std::fmt::Display {
    /// The value at fraction `t` (0 to 1) of the way from `low` to `high`.
    fn lerp(low: Self, high: Self, t: f64) -> Self;
}

impl Rollable for u64 {
    fn lerp(low: u64, high: u64, t: f64) -> u64 {
        let span = (high - low) as f64 + 1.0;
        (low + (t * span) as u64).min(high)
    }
}

impl Rollable for f64 {
    fn lerp(low: f64, high: f64, t: f64) -> f64 {
        low + (high - low) * t
    }
}

impl Rollable for Dur {
    fn lerp(low: Dur, high: Dur, t: f64) -> Dur {
        Dur(low.0 + (high.0 - low.0).mul_f64(t))
    }
}

/// `low..high` (inclusive) or one value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Range<T> {
    /// The smallest value (inclusive).
    pub low: T,
    /// The largest value (inclusive); equal to `low` for a single value.
    pub high: T,
}

impl<T: Rollable> Range<T> {
    /// The range holding only `value`.
    pub fn one(value: T) -> Self {
        Range {
            low: value,
            high: value,
        }
    }

    /// A value rolled uniformly from the range.
    pub fn roll(&self, rng: &mut Rng) -> T {
        if self.low == self.high {
            return self.low;
        }
        T::lerp(self.low, self.high, rng.unit())
    }
}

impl<T: Rollable> FromStr for Range<T> {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let parse = |s: &str| {
            s.trim()
                .parse::<T>()
                .map_err(|_| format!("invalid value `{}` in `{text}`", s.trim()))
        };
        let (low, high) = match text.split_once("..") {
            Some((low, high)) => (parse(low)?, parse(high.trim_start_matches('='))?),
            None => {
                let v = parse(text)?;
                (v, v)
            }
        };
        if high < low {
            return Err(format!("range `{text}` ends before it starts"));
        }
        Ok(Range { low, high })
    }
}

impl<T: Rollable> std::fmt::Display for Range<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.low == self.high {
            write!(f, "{}", self.low)
        } else {
            write!(f, "{}..{}", self.low, self.high)
        }
    }
}

impl<'de, T: Rollable> Deserialize<'de> for Range<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Int(u64),
            Float(f64),
            Text(String),
        }
        let text = match Repr::deserialize(d)? {
            Repr::Int(v) => v.to_string(),
            Repr::Float(v) => v.to_string(),
            Repr::Text(v) => v,
        };
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A small, seeded random generator (SplitMix64): the rolls of a run are
/// reproducible with `--seed`.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`: the same seed gives the same sequence.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next uniformly distributed 64-bit value (one SplitMix64 step).
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A float in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The load's shape. Every field is optional here: flags over the preset
/// over [`Scenario::default`].
#[derive(clap::Args, Deserialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Knobs {
    /// Connections to open.
    #[arg(long)]
    pub connections: Option<u64>,
    /// Of the connections, how many only publish (the first P); the rest
    /// only subscribe. 0 (default): every connection both publishes
    /// --broadcasts and watches --subscribe.
    #[arg(long)]
    pub publishers: Option<u64>,
    /// Broadcasts published per publishing connection (range).
    #[arg(long)]
    pub broadcasts: Option<Range<u64>>,
    /// Broadcasts watched per subscribing connection, found through
    /// announcements (range).
    #[arg(long)]
    pub subscribe: Option<Range<u64>>,
    /// Frames per second per broadcast (range).
    #[arg(long)]
    pub fps: Option<Range<f64>>,
    /// Bytes per frame, at least 8 (range).
    #[arg(long = "frame-size")]
    pub frame_size: Option<Range<u64>>,
    /// Frames per group (range); 1 = every frame its own group.
    #[arg(long = "group-size")]
    pub group_size: Option<Range<u64>>,
    /// How long to measure, after the ramp.
    #[arg(long)]
    pub duration: Option<Dur>,
    /// Interval of the live line (and of --output lines).
    #[arg(long)]
    pub report: Option<Dur>,
    /// Connections start spread evenly over this time.
    #[arg(long)]
    pub ramp: Option<Dur>,
    /// Churn: a subscribing connection lives this long (range), then
    /// closes and a new one takes its place. Off by default.
    #[arg(long)]
    pub lifetime: Option<Range<Dur>>,
    /// Seed of the per-connection rolls.
    #[arg(long)]
    pub seed: Option<u64>,
}

impl Knobs {
    /// `self` where set, else `other`.
    pub fn or(self, other: Knobs) -> Knobs {
        Knobs {
            connections: self.connections.or(other.connections),
            publishers: self.publishers.or(other.publishers),
            broadcasts: self.broadcasts.or(other.broadcasts),
            subscribe: self.subscribe.or(other.subscribe),
            fps: self.fps.or(other.fps),
            frame_size: self.frame_size.or(other.frame_size),
            group_size: self.group_size.or(other.group_size),
            duration: self.duration.or(other.duration),
            report: self.report.or(other.report),
            ramp: self.ramp.or(other.ramp),
            lifetime: self.lifetime.or(other.lifetime),
            seed: self.seed.or(other.seed),
        }
    }

    /// Fills what is unset with the defaults and checks the result.
    pub fn resolve(self) -> anyhow::Result<Scenario> {
        let d = Scenario::default();
        let s = Scenario {
            connections: self.connections.unwrap_or(d.connections),
            publishers: self.publishers.unwrap_or(d.publishers),
            broadcasts: self.broadcasts.unwrap_or(d.broadcasts),
            subscribe: self.subscribe.unwrap_or(d.subscribe),
            fps: self.fps.unwrap_or(d.fps),
            frame_size: self.frame_size.unwrap_or(d.frame_size),
            group_size: self.group_size.unwrap_or(d.group_size),
            duration: self.duration.map(|d| d.0).unwrap_or(d.duration),
            report: self.report.map(|d| d.0).unwrap_or(d.report),
            ramp: self.ramp.map(|d| d.0).unwrap_or(d.ramp),
            lifetime: self.lifetime,
            seed: self.seed.unwrap_or(d.seed),
        };
        anyhow::ensure!(s.connections > 0, "--connections must be at least 1");
        anyhow::ensure!(
            s.publishers <= s.connections,
            "--publishers {} exceeds --connections {}",
            s.publishers,
            s.connections
        );
        anyhow::ensure!(
            s.frame_size.low >= 8,
            "--frame-size must be at least 8 (the timestamp)"
        );
        anyhow::ensure!(s.group_size.low >= 1, "--group-size must be at least 1");
        anyhow::ensure!(s.fps.low > 0.0, "--fps must be positive");
        anyhow::ensure!(!s.report.is_zero(), "--report must be positive");
        if let Some(lifetime) = s.lifetime {
            anyhow::ensure!(!lifetime.low.0.is_zero(), "--lifetime must be positive");
        }
        Ok(s)
    }
}

/// The resolved shape of a run.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Connections to open, publishers and subscribers together (at least 1).
    pub connections: u64,
    /// How many of the connections (the first ones) only publish; the rest
    /// only subscribe. 0: every connection both publishes and subscribes.
    pub publishers: u64,
    /// Broadcasts published per publishing connection, rolled per connection.
    pub broadcasts: Range<u64>,
    /// Broadcasts watched per subscribing connection, rolled per connection
    /// (at most the broadcasts other connections publish).
    pub subscribe: Range<u64>,
    /// Frames per second per broadcast, rolled per connection.
    pub fps: Range<f64>,
    /// Bytes per frame, the 8-byte send timestamp included (at least 8),
    /// rolled per connection.
    pub frame_size: Range<u64>,
    /// Frames per group (at least 1), rolled per connection; 1 puts every
    /// frame in a group of its own.
    pub group_size: Range<u64>,
    /// Length of the measurement window, which opens after the ramp.
    pub duration: Duration,
    /// Period of the live line and of the `--output` interval lines.
    pub report: Duration,
    /// Connection starts are spread evenly over this time; the measurement
    /// window opens when it ends.
    pub ramp: Duration,
    /// Churn: how long a subscribing connection lives before it closes and a
    /// new one replaces it, rolled per connection life. `None`: no churn.
    pub lifetime: Option<Range<Dur>>,
    /// Seed of the per-connection rolls (the same seed gives the same plan).
    pub seed: u64,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            connections: 2,
            publishers: 0,
            broadcasts: Range::one(1),
            subscribe: Range::one(1),
            fps: Range::one(30.0),
            frame_size: Range::one(8333),
            group_size: Range::one(30),
            duration: Duration::from_secs(10),
            report: Duration::from_secs(1),
            ramp: Duration::ZERO,
            lifetime: None,
            seed: 1,
        }
    }
}

impl Scenario {
    /// The flags that reproduce this scenario.
    pub fn flags(&self) -> String {
        let mut out = format!(
            "--connections {} --publishers {} --broadcasts {} --subscribe {} --fps {} --frame-size {} \
             --group-size {} --duration {} --ramp {}",
            self.connections,
            self.publishers,
            self.broadcasts,
            self.subscribe,
            self.fps,
            self.frame_size,
            self.group_size,
            Dur(self.duration),
            Dur(self.ramp),
        );
        if let Some(lifetime) = self.lifetime {
            out.push_str(&format!(" --lifetime {lifetime}"));
        }
        out
    }
}

/// The presets shipped in `moq-bench/presets/`, built into the binary.
pub const PRESETS: &[(&str, &str)] = &[
    ("fanout", include_str!("../presets/fanout.toml")),
    ("hd", include_str!("../presets/hd.toml")),
    ("audio", include_str!("../presets/audio.toml")),
    ("chat", include_str!("../presets/chat.toml")),
    ("churn", include_str!("../presets/churn.toml")),
];

/// Loads preset `name` (a built-in name, or a path to a TOML file).
pub fn preset(name: &str) -> anyhow::Result<Knobs> {
    let text = match PRESETS.iter().find(|(n, _)| *n == name) {
        Some((_, text)) => text.to_string(),
        None => {
            let path = PathBuf::from(name);
            std::fs::read_to_string(&path).map_err(|e| {
                let names: Vec<_> = PRESETS.iter().map(|(n, _)| *n).collect();
                anyhow::anyhow!(
                    "unknown preset `{name}` (built in: {}; or a TOML file): {e}",
                    names.join(", ")
                )
            })?
        }
    };
    toml::from_str(&text).map_err(|e| anyhow::anyhow!("preset `{name}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_and_roll() {
        let r: Range<u64> = "1000..5000".parse().unwrap();
        assert_eq!((r.low, r.high), (1000, 5000));
        let mut rng = Rng::new(7);
        for _ in 0..1000 {
            let v = r.roll(&mut rng);
            assert!((1000..=5000).contains(&v));
        }
        assert_eq!("42".parse::<Range<u64>>().unwrap(), Range::one(42));
        assert!("5..1".parse::<Range<u64>>().is_err());
        let d: Range<Dur> = "500ms..2s".parse().unwrap();
        assert_eq!(d.low.0, Duration::from_millis(500));
        let f: Range<f64> = "29.97".parse().unwrap();
        assert_eq!(f.low, 29.97);
    }

    #[test]
    fn every_preset_parses() {
        for (name, _) in PRESETS {
            let knobs = preset(name).unwrap();
            knobs.resolve().unwrap();
        }
    }

    #[test]
    fn flags_win_over_presets() {
        let cli = Knobs {
            connections: Some(3),
            ..Default::default()
        };
        let merged = cli.or(preset("chat").unwrap()).resolve().unwrap();
        assert_eq!(merged.connections, 3);
        assert_eq!(merged.group_size, Range::one(1));
    }
}
