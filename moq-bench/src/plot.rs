//! The standard report's plots, as SVG files beside it (plotters' SVG
//! backend: text is left to the viewer's fonts, so nothing is embedded):
//!
//! - `*-latency.svg`: p50 and p99 latency vs subscribers (the `fanout-N`
//!   scenarios): our relay, the `--compare` relay, the raw QUIC baseline;
//! - `*-cpu.svg`: relay CPU seconds per GB delivered vs subscribers;
//! - `*-memory.svg`: relay RSS per idle connection vs connections (the
//!   `idle-N` scenarios).

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use crate::standard::Row;
use crate::stats::Summary;

/// Subscriber counts of the `fanout-N` / `baseline-N` scenarios.
const FANOUT: [u32; 4] = [1, 10, 100, 500];
/// Connection counts of the `idle-N` scenarios.
const IDLE: [u32; 3] = [50, 200, 500];

const OURS: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
const OTHER: RGBColor = RGBColor(0xd6, 0x27, 0x28);
const BASELINE: RGBColor = RGBColor(0x7f, 0x7f, 0x7f);

/// One line of a plot: its label, colour, whether dashed, and its points.
struct Series {
    label: String,
    color: RGBColor,
    dashed: bool,
    points: Vec<(u32, f64)>,
}

/// Writes every plot that has data beside `report` (`BENCHMARKS.md` gives
/// `BENCHMARKS-latency.svg`, ...); returns the files written.
pub(crate) fn write_all(rows: &[Row], report: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let stem = report
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "BENCHMARKS".into());
    let path = |kind: &str| report.with_file_name(format!("{stem}-{kind}.svg"));
    let find = |name: String| rows.iter().find(|r| r.name() == name);
    let points = |prefix: &str,
                  xs: &[u32],
                  pick: &dyn Fn(&Row) -> Option<&Summary>,
                  value: &dyn Fn(&Summary) -> Option<f64>| {
        xs.iter()
            .filter_map(|&n| {
                let row = find(format!("{prefix}-{n}"))?;
                Some((n, value(pick(row)?)?))
            })
            .collect::<Vec<_>>()
    };
    let ours: &dyn Fn(&Row) -> Option<&Summary> = &|r| r.ours();
    let other: &dyn Fn(&Row) -> Option<&Summary> = &|r| r.other();
    let mut written = Vec::new();

    let mut latency = Vec::new();
    for (label, percentile) in [("p99", 99), ("p50", 50)] {
        let value = move |s: &Summary| {
            if percentile == 99 {
                s.latency_p99_ms
            } else {
                s.latency_p50_ms
            }
        };
        let dashed = percentile == 50;
        latency.push(Series {
            label: format!("ours {label}"),
            color: OURS,
            dashed,
            points: points("fanout", &FANOUT, ours, &value),
        });
        latency.push(Series {
            label: format!("reference {label}"),
            color: OTHER,
            dashed,
            points: points("fanout", &FANOUT, other, &value),
        });
        latency.push(Series {
            label: format!("raw QUIC {label}"),
            color: BASELINE,
            dashed,
            points: points("baseline", &FANOUT, ours, &value),
        });
    }
    if draw(
        &path("latency"),
        "Latency vs subscribers (2 Mbit/s track)",
        "subscribers",
        "ms",
        &latency,
    )? {
        written.push(path("latency"));
    }

    let relay_cpu = |s: &Summary| s.relay.as_ref()?.cpu_s_per_gb;
    let sender_cpu = |s: &Summary| s.sender.as_ref()?.cpu_s_per_gb;
    let cpu = vec![
        Series {
            label: "ours".into(),
            color: OURS,
            dashed: false,
            points: points("fanout", &FANOUT, ours, &relay_cpu),
        },
        Series {
            label: "reference".into(),
            color: OTHER,
            dashed: false,
            points: points("fanout", &FANOUT, other, &relay_cpu),
        },
        Series {
            label: "raw QUIC sender".into(),
            color: BASELINE,
            dashed: true,
            points: points("baseline", &FANOUT, ours, &sender_cpu),
        },
    ];
    if draw(
        &path("cpu"),
        "Relay CPU per GB delivered vs subscribers",
        "subscribers",
        "CPU s / GB",
        &cpu,
    )? {
        written.push(path("cpu"));
    }

    let rss = |s: &Summary| Some(s.relay.as_ref()?.rss_per_connection_bytes? / 1024.0);
    let memory = vec![
        Series {
            label: "ours".into(),
            color: OURS,
            dashed: false,
            points: points("idle", &IDLE, ours, &rss),
        },
        Series {
            label: "reference".into(),
            color: OTHER,
            dashed: false,
            points: points("idle", &IDLE, other, &rss),
        },
    ];
    if draw(
        &path("memory"),
        "Relay memory per idle connection",
        "connections",
        "KiB / connection",
        &memory,
    )? {
        written.push(path("memory"));
    }
    Ok(written)
}

/// One log-x line chart; `false` (and no file) when no series has a point.
fn draw(path: &Path, caption: &str, x: &str, y: &str, series: &[Series]) -> anyhow::Result<bool> {
    let xs = || series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let (Some(x_min), Some(x_max)) = (xs().min(), xs().max()) else {
        return Ok(false);
    };
    let y_max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(0.0f64, f64::max);
    let y_max = if y_max > 0.0 { y_max * 1.15 } else { 1.0 };
    let error = |e: &dyn std::fmt::Display| anyhow::anyhow!("plot {}: {e}", path.display());

    let root = SVGBackend::new(path, (720, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| error(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((x_min.max(1)..x_max.max(x_min + 1)).log_scale(), 0f64..y_max)
        .map_err(|e| error(&e))?;
    chart
        .configure_mesh()
        .x_desc(x)
        .y_desc(y)
        .draw()
        .map_err(|e| error(&e))?;
    for line in series.iter().filter(|s| !s.points.is_empty()) {
        let color = line.color;
        let style = ShapeStyle::from(&color).stroke_width(2);
        let label = if line.dashed {
            format!("{} (dashed)", line.label)
        } else {
            line.label.clone()
        };
        if line.dashed {
            chart
                .draw_series(DashedLineSeries::new(line.points.iter().copied(), 6, 4, style))
                .map_err(|e| error(&e))?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        } else {
            chart
                .draw_series(LineSeries::new(line.points.iter().copied(), style))
                .map_err(|e| error(&e))?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        }
        chart
            .draw_series(line.points.iter().map(|&p| Circle::new(p, 3, color.filled())))
            .map_err(|e| error(&e))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| error(&e))?;
    root.present().map_err(|e| error(&e))?;
    Ok(true)
}
