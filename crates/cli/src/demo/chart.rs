//! `latency.svg` of `forkless demo` (plotters, SVG backend): write latency (p99 and p99.9 per
//! 100 ms window, log scale) over time with each snapshot window shaded in its own colour, RSS over time, and, with
//! `--compare-redis`, redis-server's p99 per window with its BGSAVE window shaded.

use std::path::Path;

use forkless_harness::hist::WindowPoint;
use forkless_harness::run::Phase;
use plotters::prelude::*;

use super::DemoOutcome;

fn err(e: impl std::fmt::Debug) -> String {
    format!("drawing latency.svg: {e:?}")
}

/// One latency panel: p99 per window, phases other than the first shaded.
fn latency_panel(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    title: &str,
    timeline: &[WindowPoint],
    phases: &[Phase],
) -> Result<(), String> {
    let t_max = timeline.last().map(|w| w.t_s + 0.1).unwrap_or(1.0).max(0.1);
    // Log scale: p99.9 can be a thousand times p99 when a window holds a stall.
    let y_max = timeline
        .iter()
        .map(|w| w.p99_us.max(w.p999_us))
        .fold(10.0, f64::max)
        * 1.5;
    let mut c = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..t_max, (1f64..y_max).log_scale())
        .map_err(err)?;
    c.configure_mesh()
        .x_desc("seconds since the writers started")
        .y_desc("latency (us, log)")
        .draw()
        .map_err(err)?;
    let colors = [
        RGBColor(70, 130, 220),
        RGBColor(230, 150, 40),
        RGBColor(150, 90, 200),
    ];
    for (i, p) in phases.iter().skip(1).enumerate() {
        let col = colors[i % colors.len()];
        c.draw_series(std::iter::once(Rectangle::new(
            [(p.start_s, 1.0), (p.end_s, y_max)],
            col.mix(0.25).filled(),
        )))
        .map_err(err)?
        .label(format!("snapshot: {}", p.name))
        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], col.mix(0.5).filled()));
    }
    c.draw_series(LineSeries::new(
        timeline
            .iter()
            .filter(|w| w.ops > 0)
            .map(|w| (w.t_s, w.p99_us.max(1.0))),
        &RED,
    ))
    .map_err(err)?
    .label("p99 per 100 ms")
    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], RED));
    let dark = RGBColor(60, 60, 60);
    c.draw_series(LineSeries::new(
        timeline
            .iter()
            .filter(|w| w.ops > 0)
            .map(|w| (w.t_s, w.p999_us.max(1.0))),
        &dark,
    ))
    .map_err(err)?
    .label("p99.9 per 100 ms")
    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], dark));
    c.configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    Ok(())
}

/// Draw the chart into `path`.
pub(super) fn draw(o: &DemoOutcome, path: &Path) -> Result<(), String> {
    let panels = if o.redis.is_some() { 3 } else { 2 };
    let root = SVGBackend::new(path, (1000, 320 * panels)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let areas = root.split_evenly((panels as usize, 1));
    latency_panel(
        &areas[0],
        "forkless: write latency, snapshots shaded",
        &o.ours.timeline,
        &o.ours.phases,
    )?;
    if let Some(r) = &o.redis {
        latency_panel(
            &areas[2],
            &format!(
                "redis-server {}: write latency (loopback), BGSAVE shaded",
                r.version
            ),
            &r.timeline,
            &r.phases,
        )?;
    }
    let rss = &o.ours.rss;
    let t_max = rss.last().map(|s| s.0).unwrap_or(1.0).max(0.1);
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let y_max = rss.iter().map(|s| mib(s.1)).fold(1.0, f64::max) * 1.1;
    let mut c = ChartBuilder::on(&areas[1])
        .caption("forkless: process RSS", ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..t_max, 0f64..y_max)
        .map_err(err)?;
    c.configure_mesh()
        .x_desc("seconds since the writers started")
        .y_desc("RSS (MiB)")
        .draw()
        .map_err(err)?;
    for p in o.ours.phases.iter().skip(1) {
        c.draw_series(std::iter::once(Rectangle::new(
            [(p.start_s, 0.0), (p.end_s, y_max)],
            RGBColor(70, 130, 220).mix(0.2).filled(),
        )))
        .map_err(err)?;
    }
    c.draw_series(LineSeries::new(rss.iter().map(|s| (s.0, mib(s.1))), &BLUE))
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}
