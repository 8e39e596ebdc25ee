//! `city --plot FILE`: an SVG chart of the run over wall time, four panels sharing the time
//! axis: open orders and idle couriers (the map's KPIs), click-to-door of the orders delivered in
//! each interval, replan time (mean and p99 per interval, from the service's histogram), and
//! the latencies the users feel (order-to-route and map staleness, p99 per interval). Faults of
//! a chaos run are shaded.
//!
//! Text is laid out with DejaVu Sans from the system (Debian's `fonts-dejavu-core`), so the
//! binary carries no font; without it the chart is not drawn and the run says why.

use std::path::Path;

use anyhow::Context;
use plotters::prelude::*;

use super::chaos::Happened;

/// One line of a panel.
pub struct Line {
    /// Its legend.
    pub label: String,
    /// Its colour.
    pub color: RGBColor,
    /// Points, (minutes from the start, value).
    pub points: Vec<(f64, f64)>,
}

/// One panel.
pub struct Panel {
    /// Its title.
    pub title: String,
    /// The unit of its values.
    pub unit: String,
    /// Its lines.
    pub lines: Vec<Line>,
}

/// Font files tried, in order.
const FONTS: [&str; 2] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];

fn register_font() -> anyhow::Result<()> {
    static REGISTERED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            let bytes = FONTS
                .iter()
                .find_map(|p| std::fs::read(p).ok())
                .ok_or_else(|| {
                    format!(
                        "no font for the chart's text (tried {}); install fonts-dejavu-core",
                        FONTS.join(", ")
                    )
                })?;
            // The font lives as long as the process; the chart library keeps a reference.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
                .map_err(|_| "the DejaVu font did not load".to_string())
        })
        .clone()
        .map_err(|e| anyhow::anyhow!(e))
}

/// Draws `panels` over `minutes` of run to `path` (SVG), shading `faults`.
///
/// # Errors
/// When no font is found or the file cannot be written.
pub fn draw(
    path: &Path,
    title: &str,
    minutes: f64,
    panels: &[Panel],
    faults: &[Happened],
) -> anyhow::Result<()> {
    register_font()?;
    let height = 260 * panels.len().max(1) as u32 + 40;
    let root = SVGBackend::new(path, (1100, height)).into_drawing_area();
    let err = |e: DrawingAreaErrorKind<_>| anyhow::anyhow!("drawing {}: {e:?}", path.display());
    root.fill(&WHITE).map_err(err)?;
    let root = root
        .titled(title, ("sans-serif", 22))
        .map_err(|e| anyhow::anyhow!("drawing the title: {e:?}"))?;
    let areas = root.split_evenly((panels.len().max(1), 1));
    let x_max = minutes.max(0.1);
    for (panel, area) in panels.iter().zip(&areas) {
        let y_max = panel
            .lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.1))
            .filter(|v| v.is_finite())
            .fold(0.0_f64, f64::max)
            .max(1e-9)
            * 1.1;
        let mut chart = ChartBuilder::on(area)
            .caption(&panel.title, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..x_max, 0.0..y_max)
            .map_err(|e| anyhow::anyhow!("a panel: {e:?}"))?;
        chart
            .configure_mesh()
            .x_desc("minutes")
            .y_desc(panel.unit.as_str())
            .label_style(("sans-serif", 12))
            .draw()
            .map_err(|e| anyhow::anyhow!("a panel's axes: {e:?}"))?;
        chart
            .draw_series(faults.iter().map(|f| {
                Rectangle::new(
                    [
                        (f.start_s / 60.0, 0.0),
                        (f.end_s.max(f.start_s + 1.0) / 60.0, y_max),
                    ],
                    RED.mix(0.12).filled(),
                )
            }))
            .map_err(|e| anyhow::anyhow!("the faults: {e:?}"))?;
        for line in &panel.lines {
            let color = line.color;
            chart
                .draw_series(LineSeries::new(
                    line.points.iter().copied().filter(|p| p.1.is_finite()),
                    color.stroke_width(2),
                ))
                .map_err(|e| anyhow::anyhow!("a line: {e:?}"))?
                .label(line.label.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .label_font(("sans-serif", 12))
            .draw()
            .map_err(|e| anyhow::anyhow!("a legend: {e:?}"))?;
    }
    root.present()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_is_written_as_svg() {
        // scripts/services installs the font (Debian's fonts-dejavu-core).
        register_font().expect("a font for the chart");
        let dir = std::env::temp_dir().join(format!("city-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("chart.svg");
        let panels = vec![Panel {
            title: "open orders".into(),
            unit: "orders".into(),
            lines: vec![Line {
                label: "open".into(),
                color: BLUE,
                points: vec![(0.0, 1.0), (1.0, 3.0), (2.0, f64::NAN), (3.0, 2.0)],
            }],
        }];
        let faults = vec![Happened {
            fault: super::super::chaos::Fault::Kill,
            start_s: 30.0,
            end_s: 35.0,
            error: None,
        }];
        draw(&path, "test run", 3.0, &panels, &faults).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
        assert!(svg.contains("open orders") && svg.contains("<polyline"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
