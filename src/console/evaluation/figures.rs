//! The evaluation's numbers as sections of rows, once: the page shows each section as a plot and
//! a table, the CSV writes the same rows with their untranslated keys.

use super::plots::Bar;
use crate::console::i18n::Lang;
use crate::projections::read_models::statistics::{DropOff, PilotStatistics, Share, Step};
use std::collections::HashMap;

/// What is read for one page.
#[derive(Debug)]
pub struct Figures {
    pub stats: PilotStatistics,
    pub drop_off: DropOff,
    /// The catalog items' names by key, for the activity mix (the CSV keeps the keys).
    pub item_names: HashMap<String, String>,
}

/// One number: its stable key (CSV), its label (page), its value for the plot, and how the page
/// and the CSV write it.
#[derive(Debug, Clone)]
pub struct Row {
    pub key: String,
    pub label: String,
    pub value: f64,
    pub shown: String,
    pub raw: String,
}

/// A group of numbers under one heading (`eval-section-<key>`), plotted or only tabled.
#[derive(Debug, Clone)]
pub struct Section {
    pub key: &'static str,
    pub plotted: bool,
    pub rows: Vec<Row>,
}

impl Section {
    pub fn bars(&self) -> Vec<Bar> {
        self.rows
            .iter()
            .map(|r| Bar {
                label: r.label.clone(),
                value: r.value,
                shown: r.shown.clone(),
            })
            .collect()
    }
}

fn count(key: impl Into<String>, label: String, n: i64) -> Row {
    Row {
        key: key.into(),
        label,
        value: n as f64,
        shown: n.to_string(),
        raw: n.to_string(),
    }
}

/// A number of days or a share, absent before there is anything to measure.
fn measure(key: &str, label: String, value: Option<f64>, shown: impl Fn(f64) -> String) -> Row {
    Row {
        key: key.to_owned(),
        label,
        value: value.unwrap_or(0.0),
        shown: value.map_or_else(|| "–".to_owned(), &shown),
        raw: value.map_or_else(String::new, |v| format!("{v:.4}")),
    }
}

fn step_label(lang: Lang, step: Step) -> String {
    lang.t(&format!("eval-step-{}", step.as_str().replace('_', "-")))
}

/// Rows of shares, labelled by `label` (a catalog item's name, a format's text).
fn shares(shares: &[Share], label: impl Fn(&str) -> String) -> Vec<Row> {
    shares
        .iter()
        .map(|s| count(s.key.clone(), label(&s.key), s.count))
        .collect()
}

/// Every section of the page, in order.
pub fn sections(lang: Lang, f: &Figures) -> Vec<Section> {
    let format = |key: &str| lang.t(&format!("eval-format-{key}"));
    let item = |key: &str| {
        f.item_names
            .get(key)
            .cloned()
            .unwrap_or_else(|| key.to_owned())
    };
    let s = &f.stats;
    let t = |key: &str| lang.t(key);
    let days = |d: f64| {
        lang.t_with(
            "eval-days",
            &[(
                "n",
                crate::console::i18n::Arg::Number((d * 10.0).round() / 10.0),
            )],
        )
    };
    let percent = |r: f64| format!("{:.0} %", r * 100.0);
    vec![
        Section {
            key: "funnel",
            plotted: true,
            rows: s
                .reached
                .iter()
                .map(|c| count(c.step.as_str(), step_label(lang, c.step), c.portfolios))
                .collect(),
        },
        Section {
            key: "activity_mix",
            plotted: true,
            rows: shares(&s.activity_mix, item),
        },
        Section {
            key: "reflection_formats",
            plotted: true,
            rows: shares(&s.reflection_formats, format),
        },
        Section {
            key: "final_formats",
            plotted: true,
            rows: shares(&s.final_formats, format),
        },
        Section {
            key: "returns",
            plotted: false,
            rows: vec![
                count(
                    "reflections_submitted",
                    t("eval-reflections-submitted"),
                    s.reflections_submitted,
                ),
                count(
                    "reflections_returned",
                    t("eval-reflections-returned"),
                    s.reflections_returned,
                ),
                measure("return_rate", t("eval-return-rate"), s.return_rate, percent),
                count(
                    "final_reflections_submitted",
                    t("eval-final-submitted"),
                    s.final_reflections_submitted,
                ),
                count(
                    "final_reflections_returned",
                    t("eval-final-returned"),
                    s.final_reflections_returned,
                ),
                count(
                    "applications_rejected",
                    t("eval-applications-rejected"),
                    s.applications_rejected,
                ),
            ],
        },
        Section {
            key: "time_to_approval",
            plotted: false,
            rows: vec![
                count("approved", t("eval-approved"), s.approved),
                count("revoked", t("eval-revoked"), s.revoked),
                count(
                    "approval_portfolios",
                    t("eval-approval-portfolios"),
                    s.first_activity_to_approval.portfolios,
                ),
                measure(
                    "mean_days",
                    t("eval-mean-days"),
                    s.first_activity_to_approval.mean_days,
                    days,
                ),
                measure(
                    "median_days",
                    t("eval-median-days"),
                    s.first_activity_to_approval.median_days,
                    days,
                ),
            ],
        },
        Section {
            key: "drop_off",
            plotted: false,
            rows: vec![
                count("open", t("eval-open"), f.drop_off.open),
                count(
                    "inactive",
                    lang.t_with(
                        "eval-inactive",
                        &[("days", i64::from(f.drop_off.inactive_days).into())],
                    ),
                    f.drop_off.inactive,
                ),
            ],
        },
        Section {
            key: "stuck",
            plotted: true,
            rows: f
                .drop_off
                .stuck
                .iter()
                .map(|c| count(c.step.as_str(), step_label(lang, c.step), c.portfolios))
                .collect(),
        },
    ]
}

/// A CSV field, quoted when it must be (RFC 4180); a leading `=`, `+` or `@` is quoted
/// with a `'` so a spreadsheet does not run it as a formula (catalog keys are typed by staff).
pub fn csv_field(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '@']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_never_formulas() {
        assert_eq!(csv_field("language-cafe"), "language-cafe");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=1+1"), "'=1+1");
    }
}
