//! Line charts drawn with plotters, written as PNG (bitmap backend, encoded with the `png`
//! crate) and SVG from one description ([`Chart`]).
//!
//! Text is rendered with an embedded subset of DejaVu Sans (`assets/`, Bitstream Vera licence)
//! through plotters' `ab_glyph` backend, so no system font or fontconfig is needed.

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{write_atomic, ReportError, Result};

/// DejaVu Sans, subset to Latin-1 and a few symbols (see `assets/LICENSE-DejaVu.txt`).
static FONT: &[u8] = include_bytes!("../assets/DejaVuSans-subset.ttf");
const FAMILY: &str = "sans-serif";

static REGISTER: Once = Once::new();

fn register_font() {
    REGISTER.call_once(|| {
        // The bytes are a valid font (checked by the tests); a failure would only make text
        // drawing fail later with an error naming the file.
        let _ = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT);
    });
}

/// An RGB colour.
pub type Rgb = (u8, u8, u8);

/// A fixed colour per task family (so curves match across plots), grey for others.
pub fn family_color(family: &str) -> Rgb {
    match family {
        "fact_recall" => (214, 39, 40),
        "open_book" => (31, 119, 180),
        "counterfactual" => (255, 127, 14),
        "in_context" => (44, 160, 44),
        "multiple_choice" => (148, 103, 189),
        _ => (127, 127, 127),
    }
}

/// The i-th colour of a general palette (matplotlib's tab10).
pub fn palette(i: usize) -> Rgb {
    const P: [Rgb; 10] = [
        (31, 119, 180),
        (255, 127, 14),
        (44, 160, 44),
        (214, 39, 40),
        (148, 103, 189),
        (140, 86, 75),
        (227, 119, 194),
        (127, 127, 127),
        (188, 189, 34),
        (23, 190, 207),
    ];
    P[i % P.len()]
}

/// One line with markers.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text.
    pub label: String,
    /// Colour.
    pub color: Rgb,
    /// `(x, y)` points, drawn in the order given.
    pub points: Vec<(f64, f64)>,
    /// Drawn dashed (e.g. a control task).
    pub dashed: bool,
}

/// How tick labels of an axis are written.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Ticks {
    /// The value with this many decimals.
    Decimals(usize),
    /// The value as a percentage (`0.3` → `30%`).
    Percent,
    /// The value is a base-10 logarithm: labels show `10^v` (`1.5` → `32`; `8.1` → `126M`).
    Log10,
}

impl Ticks {
    fn format(self, v: f64) -> String {
        match self {
            Ticks::Decimals(d) => format!("{v:.d$}"),
            Ticks::Percent => format!("{:.0}%", 100.0 * v),
            Ticks::Log10 => human(10f64.powf(v)),
        }
    }
}

/// `1234567` → `1.2M`, `45.3` → `45`.
pub fn human(x: f64) -> String {
    let a = x.abs();
    if a >= 1e9 {
        format!("{:.1}B", x / 1e9)
    } else if a >= 1e6 {
        format!("{:.0}M", x / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", x / 1e3)
    } else if a >= 10.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

/// A line chart.
#[derive(Debug, Clone)]
pub struct Chart {
    /// Title above the plot.
    pub title: String,
    /// X axis description.
    pub x_label: String,
    /// Y axis description.
    pub y_label: String,
    /// X range.
    pub x_range: (f64, f64),
    /// Y range.
    pub y_range: (f64, f64),
    /// X tick labels.
    pub x_ticks: Ticks,
    /// Y tick labels.
    pub y_ticks: Ticks,
    /// The lines.
    pub series: Vec<Series>,
    /// Horizontal reference lines `(y, label)`, drawn thin and grey.
    pub hlines: Vec<(f64, String)>,
    /// Where the legend goes.
    pub legend_lower_left: bool,
}

/// Pixel size of every chart.
pub const SIZE: (u32, u32) = (860, 540);

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, c: &Chart) -> Result<(), String> {
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
    root.fill(&WHITE).map_err(e)?;
    let (x0, x1) = c.x_range;
    let (y0, y1) = c.y_range;
    let mut chart = ChartBuilder::on(root)
        .caption(&c.title, (FAMILY, 21))
        .margin(14)
        .x_label_area_size(46)
        .y_label_area_size(64)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(e)?;
    let (xt, yt) = (c.x_ticks, c.y_ticks);
    let xf = move |v: &f64| xt.format(*v);
    let yf = move |v: &f64| yt.format(*v);
    chart
        .configure_mesh()
        .x_desc(c.x_label.as_str())
        .y_desc(c.y_label.as_str())
        .x_label_formatter(&xf)
        .y_label_formatter(&yf)
        .label_style((FAMILY, 14))
        .axis_desc_style((FAMILY, 15))
        .light_line_style(RGBColor(235, 235, 235))
        .bold_line_style(RGBColor(205, 205, 205))
        .draw()
        .map_err(e)?;
    for (y, label) in &c.hlines {
        let grey = RGBColor(120, 120, 120);
        chart
            .draw_series(DashedLineSeries::new(
                vec![(x0, *y), (x1, *y)],
                6,
                4,
                grey.stroke_width(1),
            ))
            .map_err(e)?;
        chart
            .draw_series(std::iter::once(Text::new(
                label.clone(),
                (x1 - (x1 - x0) * 0.075, *y),
                (FAMILY, 12).into_font().color(&grey),
            )))
            .map_err(e)?;
    }
    for s in &c.series {
        let color = RGBColor(s.color.0, s.color.1, s.color.2);
        let style = color.stroke_width(2);
        let pts: Vec<(f64, f64)> = s
            .points
            .iter()
            .copied()
            .filter(|p| p.0.is_finite() && p.1.is_finite())
            .map(|(x, y)| (x, y.clamp(y0, y1)))
            .collect();
        if s.dashed {
            chart
                .draw_series(DashedLineSeries::new(pts.clone(), 8, 5, style))
                .map_err(e)?;
        } else {
            chart
                .draw_series(LineSeries::new(pts.clone(), style))
                .map_err(e)?;
        }
        let dashed = s.dashed;
        chart
            .draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))
            .map_err(e)?
            .label(s.label.clone())
            .legend(move |(x, y)| {
                if dashed {
                    PathElement::new(vec![(x, y), (x + 8, y)], color.stroke_width(2))
                } else {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                }
            });
    }
    if !c.series.is_empty() {
        chart
            .configure_series_labels()
            .position(if c.legend_lower_left {
                SeriesLabelPosition::LowerLeft
            } else {
                SeriesLabelPosition::UpperRight
            })
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(180, 180, 180))
            .label_font((FAMILY, 13))
            .draw()
            .map_err(e)?;
    }
    root.present().map_err(e)?;
    Ok(())
}

/// Draws `chart` to `stem.png` and `stem.svg` (each written under a temporary name and renamed).
/// Returns the two paths.
///
/// # Errors
/// [`ReportError::Plot`] when drawing or PNG encoding fails, [`ReportError::Io`] when a file
/// cannot be written.
pub fn render(chart: &Chart, stem: &Path) -> Result<(PathBuf, PathBuf)> {
    register_font();
    let png_path = stem.with_extension("png");
    let svg_path = stem.with_extension("svg");
    let (w, h) = SIZE;
    let mut buf = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        draw(&root, chart).map_err(|reason| ReportError::Plot {
            path: png_path.clone(),
            reason,
        })?;
    }
    let png = encode_png(&buf, w, h).map_err(|reason| ReportError::Plot {
        path: png_path.clone(),
        reason,
    })?;
    write_atomic(&png_path, &png)?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        draw(&root, chart).map_err(|reason| ReportError::Plot {
            path: svg_path.clone(),
            reason,
        })?;
    }
    write_atomic(&svg_path, svg.as_bytes())?;
    Ok((png_path, svg_path))
}

/// Encodes an RGB8 buffer as PNG.
fn encode_png(rgb: &[u8], w: u32, h: u32) -> std::result::Result<Vec<u8>, String> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Best);
        let mut writer = enc.write_header().map_err(|e| e.to_string())?;
        writer.write_image_data(rgb).map_err(|e| e.to_string())?;
        writer.finish().map_err(|e| e.to_string())?;
    }
    Ok(out)
}
