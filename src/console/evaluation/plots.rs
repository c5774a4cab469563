//! The evaluation's plots: horizontal bar charts drawn on the server with `plotters` into an SVG
//! string, embedded in the page (no script, no image request, nothing for the CSP to block).
//!
//! Accessibility: the `<svg>` is `role="img"` with an `aria-label` and a `<title>`, every bar
//! carries its label and its number as text (the bars' length is never the only way to read
//! them), and the page puts the same numbers in a table beside the plot. plotters writes
//! presentation attributes (`fill=`, `font-size=`), never `style=`, which `style-src 'self'`
//! would block; a test keeps it so.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// One bar: its label, its length and how its number is written beside it.
#[derive(Debug, Clone)]
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub shown: String,
}

const WIDTH: u32 = 720;
const ROW: u32 = 30;
const LABEL_WIDTH: i32 = 280;
const NUMBER_WIDTH: i32 = 70;
/// The university's dark blue: dark enough against white for the 3:1 of WCAG's non-text contrast.
const BAR: RGBColor = RGBColor(0x00, 0x3b, 0x6f);
const TEXT: RGBColor = RGBColor(0x1a, 0x1a, 0x1a);

/// A horizontal bar chart of `bars` (longest bar = the largest value), named `label` for
/// assistive technology.
pub fn bar_chart(label: &str, bars: &[Bar]) -> String {
    let height = ROW * u32::try_from(bars.len().max(1)).unwrap_or(1) + 10;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        // Drawing into a string fails only on a broken layout, which these fixed sizes are not;
        // an unfinished plot then still shows beside its table.
        let _ = draw(&root, bars);
        let _ = root.present();
    }
    accessible(&svg, label)
}

fn draw(
    root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    bars: &[Bar],
) -> Result<(), DrawingAreaErrorKind<std::io::Error>> {
    root.fill(&WHITE)?;
    let max = bars.iter().map(|b| b.value).fold(0.0_f64, f64::max);
    let room = f64::from(WIDTH as i32 - LABEL_WIDTH - NUMBER_WIDTH - 10);
    let font = ("sans-serif", 20).into_font().color(&TEXT);
    for (i, bar) in bars.iter().enumerate() {
        let top = 5 + (ROW as i32) * i32::try_from(i).unwrap_or(0);
        let middle = top + (ROW as i32) / 2;
        root.draw(&Text::new(
            bar.label.clone(),
            (LABEL_WIDTH - 8, middle),
            font.pos(Pos::new(HPos::Right, VPos::Center)),
        ))?;
        let length = if max > 0.0 {
            (room * bar.value / max).round() as i32
        } else {
            0
        };
        if length > 0 {
            root.draw(&Rectangle::new(
                [
                    (LABEL_WIDTH, top + 4),
                    (LABEL_WIDTH + length, top + ROW as i32 - 4),
                ],
                BAR.filled(),
            ))?;
        }
        root.draw(&Text::new(
            bar.shown.clone(),
            (LABEL_WIDTH + length + 6, middle),
            font.pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
    }
    Ok(())
}

/// The SVG as an image with a name: `role="img"`, `aria-label` and a `<title>`.
fn accessible(svg: &str, label: &str) -> String {
    let label = escape(label);
    let Some(open) = svg.find("<svg") else {
        return svg.to_owned();
    };
    let Some(end) = svg[open..].find('>').map(|e| open + e) else {
        return svg.to_owned();
    };
    format!(
        "{}<svg role=\"img\" aria-label=\"{label}\"{}><title>{label}</title>{}",
        &svg[..open],
        &svg[open + 4..end],
        &svg[end + 1..]
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bars() -> Vec<Bar> {
        [
            ("Started", 10.0),
            ("Three activities & more", 4.0),
            ("Approved", 0.0),
        ]
        .into_iter()
        .map(|(label, value)| Bar {
            label: label.to_owned(),
            value,
            shown: format!("{value}"),
        })
        .collect()
    }

    #[test]
    fn a_chart_is_a_named_image_with_every_label_and_number() {
        let svg = bar_chart("Funnel \"2025/26\"", &bars());
        assert!(svg.starts_with("<svg role=\"img\" aria-label=\"Funnel &quot;2025/26&quot;\""));
        assert!(svg.contains("<title>Funnel &quot;2025/26&quot;</title>"));
        assert!(svg.contains("\nStarted\n</text>"), "{svg}");
        assert!(svg.contains("Three activities &amp; more"));
        assert!(svg.contains("\n10\n</text>") && svg.contains("\n0\n</text>"));
        // Two bars drawn (the zero has none), besides the background.
        assert_eq!(svg.matches("<rect").count(), 3);
        assert!(svg.trim_end().ends_with("</svg>"));
    }

    #[test]
    fn nothing_the_content_security_policy_would_block() {
        let svg = bar_chart("x", &bars());
        assert!(!svg.contains("style="), "{svg}");
        assert!(!svg.contains("<script"));
        assert!(!svg.contains("<style"));
    }

    #[test]
    fn an_empty_chart_still_draws() {
        let svg = bar_chart("empty", &[]);
        assert!(svg.contains("<svg role=\"img\""));
    }
}
