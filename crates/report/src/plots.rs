//! The figures, drawn by plotters into SVG strings: ρ heatmaps and 3-D bar
//! "cityscapes", histograms and the worker timeline; and their pure parts
//! (the colour scale, the basis labels and their thinning).

use plotters::coord::Shift;
use plotters::prelude::*;

/// Heatmap and bar colours: blue for −vmax, white for 0, red for +vmax
/// (values beyond ±vmax take the end colours; vmax ≤ 0 gives white).
#[must_use]
pub fn diverging(v: f64, vmax: f64) -> RGBColor {
    let t = if vmax > 0.0 && v.is_finite() {
        (v / vmax).clamp(-1.0, 1.0)
    } else {
        0.0
    };
    let (end, t) = if t >= 0.0 {
        ((178.0, 24.0, 43.0), t)
    } else {
        ((33.0, 102.0, 172.0), -t)
    };
    // t is in [0, 1] and e in [0, 255], so the channel is in [0, 255].
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let mix = |e: f64| (255.0 + (e - 255.0) * t).round() as u8;
    RGBColor(mix(end.0), mix(end.1), mix(end.2))
}

/// Basis labels: |ij⟩ (i, j < m) when n = m² with m ≥ 2, else |k⟩; digits of
/// i and j are separated by a comma when m > 10.
#[must_use]
pub fn basis_labels(n: usize) -> Vec<String> {
    let m = n.isqrt();
    if m >= 2 && m * m == n {
        (0..n)
            .map(|k| {
                let (i, j) = (k / m, k % m);
                if m > 10 {
                    format!("|{i},{j}⟩")
                } else {
                    format!("|{i}{j}⟩")
                }
            })
            .collect()
    } else {
        (0..n).map(|k| format!("|{k}⟩")).collect()
    }
}

/// Every how many rows a tick label is written so that at most `max` are.
#[must_use]
pub fn label_step(n: usize, max: usize) -> usize {
    n.div_ceil(max.max(1)).max(1)
}

/// The largest |value| (1 when all are zero or not finite), the colour
/// scale's end shared by a sample's Re and Im figures.
pub fn scale_of(re: &[f64], im: &[f64]) -> f64 {
    let m = re
        .iter()
        .chain(im)
        .filter(|v| v.is_finite())
        .fold(0.0f64, |a, v| a.max(v.abs()));
    if m > 0.0 { m } else { 1.0 }
}

/// The largest dimension drawn as 3-D bars (above it: heatmaps only).
pub const MAX_BARS_DIM: usize = 16;

const FONT: &str = "sans-serif";

fn err(what: &str) -> impl Fn(DrawingAreaErrorKind<std::io::Error>) -> String + '_ {
    move |e| format!("draw the {what}: {e}")
}

fn draw<F>(what: &str, size: (u32, u32), f: F) -> Result<String, String>
where
    F: FnOnce(
        &DrawingArea<SVGBackend<'_>, Shift>,
    ) -> Result<(), DrawingAreaErrorKind<std::io::Error>>,
{
    let mut s = String::new();
    {
        let root = SVGBackend::with_string(&mut s, size).into_drawing_area();
        root.fill(&WHITE).map_err(err(what))?;
        f(&root).map_err(err(what))?;
        root.present().map_err(err(what))?;
    }
    Ok(s)
}

/// A row or column index of an n×n figure as a plotting coordinate: the
/// figure's values hold n² entries, so n (and every index below it) is far
/// below 2^31.
#[allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)]
fn coord(k: usize) -> i32 {
    k as i32
}

/// An n×n heatmap of `values` (row-major), row 0 at the top, with basis tick
/// labels (thinned to at most 16 per axis) and a colour bar.
///
/// # Errors
///
/// When plotters fails to draw it.
pub fn heatmap(title: &str, values: &[f64], n: usize, vmax: f64) -> Result<String, String> {
    let labels = basis_labels(n);
    let n_i = coord(n);
    draw("heatmap", (350, 310), |root| {
        let (left, right) = root.split_horizontally(285);
        let mut chart = ChartBuilder::on(&left)
            .caption(title, (FONT, 15))
            .margin(6)
            .x_label_area_size(34)
            .y_label_area_size(42)
            .build_cartesian_2d((0..n_i - 1).into_segmented(), (0..n_i - 1).into_segmented())?;
        let fmt = |reverse: bool, step: usize| {
            let labels = &labels;
            move |v: &SegmentValue<i32>| match v {
                SegmentValue::CenterOf(k) => {
                    let k = if reverse { n_i - 1 - *k } else { *k };
                    match usize::try_from(k) {
                        Ok(k) if k < n && k.is_multiple_of(step) => labels[k].clone(),
                        _ => String::new(),
                    }
                }
                _ => String::new(),
            }
        };
        // Fewer labels across (they are wider than tall).
        let xf = fmt(false, label_step(n, 8));
        let yf = fmt(true, label_step(n, 16));
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(n + 1)
            .y_labels(n + 1)
            .x_label_formatter(&xf)
            .y_label_formatter(&yf)
            .label_style((FONT, 10))
            .draw()?;
        chart.draw_series(
            (0..n)
                .flat_map(|i| (0..n).map(move |j| (i, j)))
                .map(|(i, j)| {
                    let y = n_i - 1 - coord(i);
                    let x = coord(j);
                    Rectangle::new(
                        [
                            (SegmentValue::Exact(x), SegmentValue::Exact(y + 1)),
                            (SegmentValue::Exact(x + 1), SegmentValue::Exact(y)),
                        ],
                        diverging(values[i * n + j], vmax).filled(),
                    )
                }),
        )?;
        colour_bar(&right, vmax)
    })
}

fn colour_bar(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    vmax: f64,
) -> Result<(), DrawingAreaErrorKind<std::io::Error>> {
    let mut bar = ChartBuilder::on(area)
        .margin_top(30)
        .margin_bottom(40)
        .margin_right(2)
        .y_label_area_size(40)
        .build_cartesian_2d(0.0..1.0, -vmax..vmax)?;
    bar.configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_labels(5)
        .y_label_formatter(&|v| format!("{v:.2}"))
        .label_style((FONT, 9))
        .draw()?;
    let k = 24;
    bar.draw_series((0..k).map(|s| {
        let lo = -vmax + 2.0 * vmax * f64::from(s) / f64::from(k);
        let hi = -vmax + 2.0 * vmax * f64::from(s + 1) / f64::from(k);
        Rectangle::new(
            [(0.0, hi), (1.0, lo)],
            diverging(f64::midpoint(lo, hi), vmax).filled(),
        )
    }))?;
    Ok(())
}

fn shade(c: RGBColor, f: f64) -> RGBColor {
    // f is in [0, 1] (a shade), so the channel stays in [0, 255].
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let s = |x: u8| (f64::from(x) * f).round() as u8;
    RGBColor(s(c.0), s(c.1), s(c.2))
}

/// An n×n "cityscape": one bar per element, its height the value, drawn far
/// to near with only the faces that face the viewer (top and two sides).
///
/// # Errors
///
/// When plotters fails to draw it.
pub fn bars(title: &str, values: &[f64], n: usize, vmax: f64) -> Result<String, String> {
    let labels = basis_labels(n);
    let step = label_step(n, 8);
    let lo = values
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::min);
    let hi = values
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let (lo, hi) = if hi - lo > 0.0 {
        (lo, hi)
    } else {
        (-vmax, vmax)
    };
    let nf = n as f64;
    draw("3-D bars", (340, 310), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 15))
            .margin(4)
            .build_cartesian_3d(0.0..nf, lo..hi, 0.0..nf)?;
        chart.with_projection(|mut p| {
            p.yaw = 0.6;
            p.pitch = 0.45;
            p.scale = 0.8;
            p.into_matrix()
        });
        chart
            .configure_axes()
            .light_grid_style(WHITE.mix(0.0))
            .max_light_lines(1)
            .x_labels(0)
            .z_labels(0)
            .y_labels(3)
            .y_formatter(&|v| format!("{v:.2}"))
            .label_style((FONT, 9))
            .draw()?;
        let spec = chart.as_coord_spec().clone();
        let depth = |x: f64, y: f64, z: f64| spec.projected_depth(&x, &y, &z);
        // Bars far to near (a larger depth is farther).
        let mut cells: Vec<(usize, usize)> =
            (0..n).flat_map(|i| (0..n).map(move |j| (i, j))).collect();
        cells.sort_by_key(|&(i, j)| std::cmp::Reverse(depth(j as f64 + 0.5, 0.0, i as f64 + 0.5)));
        let (x_near, z_near) = {
            let c = nf / 2.0;
            (
                depth(c - 1.0, 0.0, c) > depth(c + 1.0, 0.0, c),
                depth(c, 0.0, c - 1.0) > depth(c, 0.0, c + 1.0),
            )
        };
        let mut faces = Vec::with_capacity(3 * n * n);
        for (i, j) in cells {
            let v = values[i * n + j];
            if !v.is_finite() {
                continue;
            }
            let (x0, x1) = (j as f64 + 0.1, j as f64 + 0.9);
            let (z0, z1) = (i as f64 + 0.1, i as f64 + 0.9);
            let (b, t) = if v >= 0.0 { (0.0, v) } else { (v, 0.0) };
            let c = diverging(v, vmax);
            let xs = if x_near { x1 } else { x0 };
            let zs = if z_near { z1 } else { z0 };
            faces.push(Polygon::new(
                vec![(xs, b, z0), (xs, t, z0), (xs, t, z1), (xs, b, z1)],
                shade(c, 0.7).filled(),
            ));
            faces.push(Polygon::new(
                vec![(x0, b, zs), (x0, t, zs), (x1, t, zs), (x1, b, zs)],
                shade(c, 0.85).filled(),
            ));
            faces.push(Polygon::new(
                vec![(x0, t, z0), (x1, t, z0), (x1, t, z1), (x0, t, z1)],
                c.filled(),
            ));
        }
        chart.draw_series(faces)?;
        let style = TextStyle::from((FONT, 9).into_font()).color(&BLACK);
        let edge_x = if z_near { nf + 0.4 } else { -0.9 };
        let edge_z = if x_near { nf + 0.2 } else { -1.2 };
        chart.draw_series((0..n).filter(|k| k.is_multiple_of(step)).flat_map(|k| {
            let kf = k as f64 + 0.5;
            [
                Text::new(labels[k].clone(), (kf, lo, edge_x), style.clone()),
                Text::new(labels[k].clone(), (edge_z, lo, kf), style.clone()),
            ]
        }))?;
        Ok(())
    })
}

/// A histogram of pre-computed bins `(lo, hi, count)`.
pub fn histogram(title: &str, x_desc: &str, bins: &[(f64, f64, u64)]) -> Result<String, String> {
    let (x0, x1) = match (bins.first(), bins.last()) {
        (Some(a), Some(b)) => (a.0, b.1),
        _ => (0.0, 1.0),
    };
    let top = bins.iter().map(|b| b.2).max().unwrap_or(1).max(1);
    draw("histogram", (320, 200), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 13))
            .margin(6)
            .x_label_area_size(32)
            .y_label_area_size(36)
            .build_cartesian_2d(x0..x1, 0u64..top + top / 10 + 1)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(4)
            .y_labels(4)
            .x_desc(x_desc)
            .x_label_formatter(&|v| short(*v))
            .label_style((FONT, 9))
            .draw()?;
        chart.draw_series(
            bins.iter().map(|&(a, b, c)| {
                Rectangle::new([(a, c), (b, 0)], RGBColor(70, 110, 170).filled())
            }),
        )?;
        Ok(())
    })
}

/// A number in at most about 5 significant characters.
pub fn short(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e5).contains(&a) {
        format!("{v:.1e}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

/// A colour per dimension index, from plotters' palette.
pub fn dim_colour(k: usize) -> RGBColor {
    let c = Palette99::pick(k).to_rgba();
    RGBColor(c.0, c.1, c.2)
}

/// One bar of the timeline.
pub struct Span {
    pub slot: usize,
    /// Seconds after the first job's start.
    pub start: f64,
    pub seconds: f64,
    /// Index of the job's dimension in `dims`.
    pub dim_index: usize,
}

/// The worker timeline: one row per slot, a bar per job, coloured by
/// dimension, with a legend.
pub fn timeline(spans: &[Span], slots: usize, dims: &[usize]) -> Result<String, String> {
    let end = spans
        .iter()
        .map(|s| s.start + s.seconds)
        .fold(0.0f64, f64::max)
        .max(1e-3);
    let rows = i32::try_from(slots.max(1)).map_err(|_| {
        format!("draw the worker timeline: its {slots} worker slots are more than it can draw")
    })?;
    let height = rows
        .unsigned_abs()
        .saturating_mul(22)
        .saturating_add(120)
        .min(900);
    draw("worker timeline", (900, height), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption("worker timeline", (FONT, 14))
            .margin(8)
            .x_label_area_size(34)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..end * 1.02, (0..rows).into_segmented())?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_desc("seconds after the first job started")
            .y_labels(slots.max(1) + 1)
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(k) => format!("worker {k}"),
                _ => String::new(),
            })
            .label_style((FONT, 10))
            .draw()?;
        for (k, &d) in dims.iter().enumerate() {
            let colour = dim_colour(k);
            chart
                .draw_series(spans.iter().filter(|s| s.dim_index == k).map(|s| {
                    // Below `slots`, which fits i32 (checked above).
                    #[allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)]
                    let y = s.slot as i32;
                    Rectangle::new(
                        [
                            (s.start, SegmentValue::Exact(y)),
                            (s.start + s.seconds, SegmentValue::Exact(y + 1)),
                        ],
                        colour.filled(),
                    )
                }))?
                .label(format!("n = {d}"))
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 10, y + 5)], colour.filled())
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .label_font((FONT, 10))
            .position(SeriesLabelPosition::UpperRight)
            .draw()?;
        Ok(())
    })
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // the expected values are exact in binary floating point
mod tests {
    use super::*;

    #[test]
    fn colour_scale_is_white_at_zero_and_saturates() {
        assert_eq!(diverging(0.0, 1.0), RGBColor(255, 255, 255));
        assert_eq!(diverging(1.0, 1.0), RGBColor(178, 24, 43));
        assert_eq!(diverging(5.0, 1.0), RGBColor(178, 24, 43));
        assert_eq!(diverging(-1.0, 1.0), RGBColor(33, 102, 172));
        assert_eq!(diverging(f64::NAN, 1.0), RGBColor(255, 255, 255));
        assert_eq!(diverging(0.3, 0.0), RGBColor(255, 255, 255));
        let half = diverging(0.5, 1.0);
        assert!(half.0 > 178 && half.0 < 255 && half.1 > 24 && half.1 < 255);
        // Monotone in |v| on each side.
        assert!(diverging(0.2, 1.0).1 > diverging(0.4, 1.0).1);
        assert!(diverging(-0.2, 1.0).0 > diverging(-0.4, 1.0).0);
    }

    #[test]
    fn basis_labels_are_two_qudit_when_n_is_a_square() {
        assert_eq!(basis_labels(4), vec!["|00⟩", "|01⟩", "|10⟩", "|11⟩"]);
        assert_eq!(basis_labels(3), vec!["|0⟩", "|1⟩", "|2⟩"]);
        assert_eq!(basis_labels(9)[5], "|12⟩");
        assert_eq!(basis_labels(8)[7], "|7⟩");
        assert_eq!(basis_labels(2), vec!["|0⟩", "|1⟩"]);
        assert_eq!(basis_labels(64)[63], "|77⟩");
        assert_eq!(basis_labels(121)[120], "|10,10⟩");
    }

    #[test]
    fn labels_are_thinned_to_the_maximum() {
        assert_eq!(label_step(8, 16), 1);
        assert_eq!(label_step(16, 16), 1);
        assert_eq!(label_step(64, 16), 4);
        assert_eq!(label_step(100, 16), 7);
        assert!(64usize.div_ceil(label_step(64, 16)) <= 16);
        assert_eq!(label_step(0, 16), 1);
    }

    #[test]
    fn scale_and_short_numbers() {
        assert_eq!(scale_of(&[0.1, -0.5], &[0.3]), 0.5);
        assert_eq!(scale_of(&[0.0], &[f64::NAN]), 1.0);
        assert_eq!(short(0.5), "0.5");
        assert_eq!(short(123.4), "123");
        assert_eq!(short(0.0), "0");
        assert_eq!(short(2e-5), "2.0e-5");
    }

    #[test]
    fn figures_are_svg_with_one_cell_per_element() {
        let n = 4;
        let v: Vec<f64> = (0..n * n).map(|k| k as f64 / 16.0 - 0.5).collect();
        let h = heatmap("Re ρ", &v, n, 0.5).unwrap();
        assert!(h.starts_with("<svg") && h.trim_end().ends_with("</svg>"));
        assert!(h.contains("|01⟩"));
        // 16 cells plus 24 colour-bar steps plus the background.
        assert!(h.matches("<rect").count() >= 16 + 24);
        let b = bars("Re ρ", &v, n, 0.5).unwrap();
        assert!(b.matches("<polygon").count() >= 3 * 16);
        let t = timeline(
            &[Span {
                slot: 1,
                start: 0.0,
                seconds: 1.0,
                dim_index: 0,
            }],
            2,
            &[8],
        )
        .unwrap();
        assert!(t.contains("n = 8") && t.contains("worker 1"));
    }
}
