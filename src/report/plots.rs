//! Plots of a run, as SVG (inlined in the HTML report) and PNG files.
//!
//! This module owns [`Figure`] and [`Panel`] (what a plot shows, independent
//! of the drawing backend) and their rendering with plotters; text uses the
//! bundled DejaVu Sans font, so nothing depends on system fonts. Colours are
//! the Okabe–Ito colour-blind-safe palette.

use crate::error::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::sync::Once;

/// Okabe–Ito palette (colour-blind safe).
pub const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(213, 94, 0),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(240, 228, 66),
];

static FONTS: Once = Once::new();

/// Register the bundled font under "sans-serif" (once per process).
fn fonts() {
    FONTS.call_once(|| {
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
        let _ = plotters::style::register_font("sans-serif", FontStyle::Bold, dejavu::sans::bold());
    });
}

/// One labelled value with an optional ± error bar.
#[derive(Debug, Clone)]
pub struct Dot {
    /// Row label, e.g. `cluster / dm-cr2`.
    pub label: String,
    /// Value.
    pub value: f64,
    /// Half-width of the error bar.
    pub err: Option<f64>,
    /// Colour index into [`PALETTE`] (e.g. by design).
    pub colour: usize,
}

/// A named line of (x, y) points, thin without markers when the flag is set,
/// in the given palette colour.
pub type Series = (String, Vec<(f64, f64)>, bool, usize);

/// One panel of a figure.
#[derive(Debug, Clone)]
pub enum Panel {
    /// Horizontal dot plot, one row per dot, with an optional reference line.
    Dots {
        /// Panel title.
        title: String,
        /// Axis label of the values.
        x_label: String,
        /// The rows.
        dots: Vec<Dot>,
        /// A vertical reference line (value, label).
        reference: Option<(f64, String)>,
        /// Whether to start the axis at zero.
        from_zero: bool,
    },
    /// Histogram with an optional marked value.
    Hist {
        /// Panel title.
        title: String,
        /// Axis label.
        x_label: String,
        /// The values.
        values: Vec<f64>,
        /// Number of bins.
        bins: usize,
        /// A marked value (value, label).
        marker: Option<(f64, String)>,
        /// Colour index.
        colour: usize,
        /// The values are log10 of a size: bins are equal in log10, ticks
        /// are labelled in sizes.
        log_x: bool,
    },
    /// Lines of (x, y) points, one per series, with an optional horizontal line.
    Lines {
        /// Panel title.
        title: String,
        /// x-axis label.
        x_label: String,
        /// y-axis label.
        y_label: String,
        /// The lines.
        series: Vec<Series>,
        /// A horizontal reference line and its legend label.
        reference: Option<(f64, String)>,
        /// Fixed y range (e.g. [0, 1] for shares); else from the data.
        y_range: Option<(f64, f64)>,
        /// x values are log10 of a count: ticks are labelled in counts.
        log_x: bool,
    },
}

/// A figure: a title and a grid of panels.
#[derive(Debug, Clone)]
pub struct Figure {
    /// File stem, e.g. `bias`.
    pub name: String,
    /// Title over all panels.
    pub title: String,
    /// Panels, filled row by row.
    pub panels: Vec<Panel>,
    /// Columns of the grid.
    pub cols: usize,
    /// Size in pixels (width, height).
    pub size: (u32, u32),
}

type DrawResult = std::result::Result<(), String>;

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

fn finite_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if hi - lo < 1e-12 {
        let pad = lo.abs().max(1.0) * 0.05;
        return (lo - pad, hi + pad);
    }
    let pad = (hi - lo) * 0.08;
    (lo - pad, hi + pad)
}

/// A tick label for a log10 value, in the original units (2 significant digits).
fn from_log10(v: f64) -> String {
    let x = 10f64.powf(v);
    if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x >= 1e4 {
        format!("{:.0}k", x / 1e3)
    } else if x >= 100.0 {
        let mag = 10f64.powf(x.log10().floor() - 1.0);
        format!("{:.0}", (x / mag).round() * mag)
    } else if x >= 10.0 {
        format!("{:.0}", x)
    } else {
        format!("{:.1}", x)
    }
}

/// A tick label without float noise (at most 4 decimals, trailing zeros dropped).
fn pretty(v: f64) -> String {
    let s = format!("{:.4}", v);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.into()
    }
}

/// Tick label for a count axis: integers only (no repeated rounded labels).
fn integer_tick(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{:.0}", v)
    } else {
        String::new()
    }
}

/// Width of the right margin holding a legend of these labels beside the
/// plot (so it never covers data).
fn legend_margin(labels: &[&str]) -> u32 {
    let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0) as u32;
    if longest == 0 {
        8
    } else {
        40 + longest * 8
    }
}

fn draw_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, panel: &Panel) -> DrawResult {
    let title_style = ("sans-serif", 17).into_font();
    let label_style = ("sans-serif", 13).into_font();
    match panel {
        Panel::Dots {
            title,
            x_label,
            dots,
            reference,
            from_zero,
        } => {
            let n = dots.len().max(1);
            let (mut lo, mut hi) = finite_range(
                dots.iter()
                    .flat_map(|d| {
                        let e = d.err.unwrap_or(0.0);
                        [d.value - e, d.value + e]
                    })
                    .chain(reference.iter().map(|r| r.0)),
            );
            if *from_zero {
                lo = lo.min(0.0);
                hi = hi.max(0.0);
            }
            let longest = dots
                .iter()
                .map(|d| d.label.chars().count())
                .max()
                .unwrap_or(4) as u32;
            let mut chart = ChartBuilder::on(area)
                .caption(title, title_style)
                .margin(8)
                .margin_right(16)
                .x_label_area_size(40)
                .y_label_area_size((longest * 8 + 10).min(260))
                .build_cartesian_2d(lo..hi, -0.5f64..(n as f64 - 0.5))
                .map_err(err)?;
            let x_desc = match reference {
                Some((_, name)) => format!("{x_label}   (black line: {name})"),
                None => x_label.clone(),
            };
            let labels: Vec<String> = dots.iter().map(|d| d.label.clone()).collect();
            chart
                .configure_mesh()
                .disable_y_mesh()
                .y_labels(n)
                .y_label_formatter(&|y| {
                    let i = y.round();
                    if (y - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < labels.len() {
                        labels[labels.len() - 1 - i as usize].clone()
                    } else {
                        String::new()
                    }
                })
                .x_desc(x_desc.as_str())
                .x_labels(8)
                .label_style(label_style.clone())
                .draw()
                .map_err(err)?;
            if let Some((v, _)) = reference {
                chart
                    .draw_series(LineSeries::new(
                        [(*v, -0.5), (*v, n as f64 - 0.5)],
                        BLACK.stroke_width(2),
                    ))
                    .map_err(err)?;
            }
            for (k, d) in dots.iter().enumerate() {
                if !d.value.is_finite() {
                    continue;
                }
                let y = (dots.len() - 1 - k) as f64;
                let c = PALETTE[d.colour % PALETTE.len()];
                if let Some(e) = d.err.filter(|e| e.is_finite()) {
                    chart
                        .draw_series([ErrorBar::new_horizontal(
                            y,
                            d.value - e,
                            d.value,
                            d.value + e,
                            c.stroke_width(2),
                            8,
                        )])
                        .map_err(err)?;
                }
                chart
                    .draw_series([Circle::new((d.value, y), 5, c.filled())])
                    .map_err(err)?;
            }
        }
        Panel::Hist {
            title,
            x_label,
            values,
            bins,
            marker,
            colour,
            log_x,
        } => {
            let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
            let (lo, hi) = finite_range(finite.iter().copied().chain(marker.iter().map(|m| m.0)));
            let bins = (*bins).max(1);
            let width = (hi - lo) / bins as f64;
            let mut counts = vec![0usize; bins];
            for v in &finite {
                let b = (((v - lo) / width) as usize).min(bins - 1);
                counts[b] += 1;
            }
            let peak = counts.iter().copied().max().unwrap_or(1).max(1);
            let top = peak as f64 * 1.1;
            let mut chart = ChartBuilder::on(area)
                .caption(title, title_style)
                .margin(8)
                .margin_right(16)
                .x_label_area_size(40)
                .y_label_area_size(50)
                .build_cartesian_2d(lo..hi, 0f64..top)
                .map_err(err)?;
            let log = *log_x;
            let x_desc = match marker {
                Some((_, name)) => format!("{x_label}   (black line: {name})"),
                None => x_label.clone(),
            };
            chart
                .configure_mesh()
                .x_desc(x_desc.as_str())
                .x_labels(6)
                .y_desc("count")
                .y_labels(peak.min(10) + 1)
                .y_label_formatter(&|v| integer_tick(*v))
                .x_label_formatter(&|v| {
                    if log {
                        from_log10(*v)
                    } else {
                        pretty(*v)
                    }
                })
                .label_style(label_style.clone())
                .draw()
                .map_err(err)?;
            let c = PALETTE[colour % PALETTE.len()];
            chart
                .draw_series(counts.iter().enumerate().map(|(b, &k)| {
                    let x0 = lo + b as f64 * width;
                    Rectangle::new([(x0, 0.0), (x0 + width, k as f64)], c.mix(0.75).filled())
                }))
                .map_err(err)?;
            if let Some((v, _)) = marker {
                chart
                    .draw_series(LineSeries::new(
                        [(*v, 0.0), (*v, top)],
                        BLACK.stroke_width(2),
                    ))
                    .map_err(err)?;
            }
        }
        Panel::Lines {
            title,
            x_label,
            y_label,
            series,
            reference,
            y_range,
            log_x,
        } => {
            let (xlo, xhi) = finite_range(series.iter().flat_map(|s| s.1.iter().map(|p| p.0)));
            let (ylo, yhi) = y_range.unwrap_or_else(|| {
                finite_range(
                    series
                        .iter()
                        .flat_map(|s| s.1.iter().map(|p| p.1))
                        .chain(reference.iter().map(|r| r.0)),
                )
            });
            let mut labels: Vec<&str> = series.iter().map(|s| s.0.as_str()).collect();
            labels.extend(reference.iter().map(|r| r.1.as_str()));
            let mut chart = ChartBuilder::on(area)
                .caption(title, title_style)
                .margin(8)
                .margin_right(legend_margin(&labels))
                .x_label_area_size(40)
                .y_label_area_size(60)
                .build_cartesian_2d(xlo..xhi, ylo..yhi)
                .map_err(err)?;
            let log = *log_x;
            chart
                .configure_mesh()
                .x_desc(x_label.as_str())
                .y_desc(y_label.as_str())
                .x_labels(8)
                .x_label_formatter(&|v| {
                    if log {
                        from_log10(*v)
                    } else {
                        pretty(*v)
                    }
                })
                .label_style(label_style.clone())
                .draw()
                .map_err(err)?;
            let mut legend: Vec<(String, ShapeStyle, bool)> = Vec::new();
            if let Some((r, name)) = reference {
                let style = BLACK.mix(0.6).stroke_width(1);
                chart
                    .draw_series(LineSeries::new([(xlo, *r), (xhi, *r)], style))
                    .map_err(err)?;
                legend.push((name.clone(), style, false));
            }
            for (name, pts, dashed, colour) in series.iter() {
                let c = PALETTE[colour % PALETTE.len()];
                let style = if *dashed {
                    c.stroke_width(1)
                } else {
                    c.stroke_width(3)
                };
                chart
                    .draw_series(LineSeries::new(
                        pts.iter().copied().filter(|p| p.1.is_finite()),
                        style,
                    ))
                    .map_err(err)?;
                legend.push((name.clone(), style, !dashed));
                if !dashed {
                    chart
                        .draw_series(
                            pts.iter()
                                .filter(|p| p.1.is_finite())
                                .map(|&p| Circle::new(p, 4, c.filled())),
                        )
                        .map_err(err)?;
                }
            }
            // The legend beside the plot (in the right margin), never over the data.
            let (px, py) = chart.plotting_area().get_pixel_range();
            let base = area.get_base_pixel();
            let (x0, y0) = (px.end - base.0 + 12, py.start - base.1 + 4);
            for (k, (name, style, marker)) in legend.iter().enumerate() {
                let y = y0 + 20 * k as i32;
                area.draw(&PathElement::new([(x0, y + 7), (x0 + 22, y + 7)], *style))
                    .map_err(err)?;
                if *marker {
                    area.draw(&Circle::new((x0 + 11, y + 7), 4, style.color.filled()))
                        .map_err(err)?;
                }
                area.draw(&Text::new(name.clone(), (x0 + 28, y), label_style.clone()))
                    .map_err(err)?;
            }
        }
    }
    Ok(())
}

fn draw_figure<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, fig: &Figure) -> DrawResult {
    root.fill(&WHITE).map_err(err)?;
    let root = root
        .titled(&fig.title, ("sans-serif", 22).into_font())
        .map_err(err)?;
    let cols = fig.cols.max(1);
    let rows = fig.panels.len().div_ceil(cols).max(1);
    let areas = root.split_evenly((rows, cols));
    for (panel, area) in fig.panels.iter().zip(areas.iter()) {
        draw_panel(area, panel)?;
    }
    root.present().map_err(err)
}

impl Figure {
    /// Render as an SVG document.
    pub fn svg(&self) -> Result<String> {
        fonts();
        let mut s = String::new();
        {
            let root = SVGBackend::with_string(&mut s, self.size).into_drawing_area();
            draw_figure(root, self)
                .map_err(|e| Error::Internal(format!("plot {}: {e}", self.name)))?;
        }
        Ok(s)
    }
}

/// Rasterize an SVG document (fonts: the bundled DejaVu Sans only).
pub fn svg_to_png(svg: &str) -> std::result::Result<Vec<u8>, String> {
    use resvg::{tiny_skia, usvg};
    let mut opt = usvg::Options::default();
    {
        let db = opt.fontdb_mut();
        db.load_font_data(dejavu::sans::regular().to_vec());
        db.load_font_data(dejavu::sans::bold().to_vec());
        db.set_sans_serif_family("DejaVu Sans");
    }
    opt.font_family = "DejaVu Sans".into();
    let tree = usvg::Tree::from_str(svg, &opt).map_err(|e| e.to_string())?;
    let size = tree.size().to_int_size();
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height())
        .ok_or_else(|| "empty image".to_string())?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
    pixmap.encode_png().map_err(|e| e.to_string())
}
