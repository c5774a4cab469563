//! The metric families read from the database at every scrape ([`crate::ops::health`]): the same
//! figures on every process, so a dashboard may take any of them (or `max by` over them).
//!
//! Label values are fixed vocabularies (projection names, outcomes, states), never ids. A time
//! that never happened (no successful export yet) leaves its family out rather than showing 0,
//! which an alert on "seconds since" would read as 1970.

use super::escape;
use crate::ops::health::{HealthSnapshot, ProjectionHealth};
use std::fmt::Write;
use std::time::Duration;

/// The database readings of `health`; with `None` (the database could not be read) only
/// `cim_health_readings_ok 0`, so an alert can tell "no readings" from "all is well".
pub(super) fn render(out: &mut String, health: Option<&HealthSnapshot>) {
    gauge(
        out,
        "cim_health_readings_ok",
        "1 when the readings of the database below were taken at this scrape, 0 when the database could not be read.",
        &[("", f64::from(u8::from(health.is_some())))],
    );
    let Some(h) = health else {
        return;
    };
    render_projections(out, h);
    render_export(out, h);
    if let Some(l) = &h.ladok {
        gauge(
            out,
            "cim_ladok_waiting_certificates",
            "Approved certificates Ladok does not have yet, by Ladok status (pending: not tried yet; retrying: a run failed to deliver; failed: refused by a Ladok rule, waits for the registrar).",
            &[
                ("ladok_status=\"pending\"", l.pending as f64),
                ("ladok_status=\"retrying\"", l.retrying as f64),
                ("ladok_status=\"failed\"", l.failed as f64),
            ],
        );
        gauge(
            out,
            "cim_ladok_oldest_waiting_seconds",
            "Age of the oldest approved certificate Ladok does not have yet, since its approval (0 when none waits).",
            &[("", seconds(l.oldest_age))],
        );
    }
    let o = &h.outbox;
    gauge(
        out,
        "cim_outbox_messages",
        "Messages in the notifications' outbox, by state (failed: given up after the last retry).",
        &[
            ("state=\"pending\"", o.pending as f64),
            ("state=\"sent\"", o.sent as f64),
            ("state=\"failed\"", o.failed as f64),
            ("state=\"cancelled\"", o.cancelled as f64),
        ],
    );
    gauge(
        out,
        "cim_outbox_retrying_messages",
        "Pending messages of the outbox that have failed at least once.",
        &[("", o.retrying as f64)],
    );
    gauge(
        out,
        "cim_outbox_oldest_pending_seconds",
        "Age of the oldest pending message of the outbox (0 when none is pending).",
        &[("", seconds(o.oldest_pending_age))],
    );
    gauge(
        out,
        "cim_outbox_consumer_lag_events",
        "Events in the log that the outbox's consumer has not decided messages for yet.",
        &[("", o.consumer_behind as f64)],
    );
    gauge(
        out,
        "cim_outbox_consumer_lag_seconds",
        "Age of the oldest event the outbox's consumer has not decided yet (0 when none waits).",
        &[("", seconds(o.consumer_oldest_undecided_age))],
    );
}

fn render_projections(out: &mut String, h: &HealthSnapshot) {
    type Reading = fn(&ProjectionHealth) -> f64;
    let families: [(&str, &str, Reading); 4] = [
        (
            "cim_projection_position",
            "Global position of the last event the projection applied.",
            |p| p.position as f64,
        ),
        (
            "cim_projection_lag_events",
            "Events in the log after the projection's checkpoint.",
            |p| p.behind as f64,
        ),
        (
            "cim_projection_lag_seconds",
            "Age of the oldest event the projection has not applied yet (0 when caught up).",
            |p| seconds(p.oldest_unapplied_age),
        ),
        (
            "cim_projection_rebuilding",
            "1 while the projection is being rebuilt from the start of the log.",
            |p| f64::from(u8::from(p.rebuilding)),
        ),
    ];
    let labels: Vec<String> = h
        .projections
        .iter()
        .map(|p| format!("projection=\"{}\"", escape(&p.name)))
        .collect();
    for (name, help, reading) in families {
        let samples: Vec<(&str, f64)> = labels
            .iter()
            .zip(&h.projections)
            .map(|(label, p)| (label.as_str(), reading(p)))
            .collect();
        gauge(out, name, help, &samples);
    }
}

fn render_export(out: &mut String, h: &HealthSnapshot) {
    let e = &h.export;
    if let Some(at) = e.last_success_at {
        gauge(
            out,
            "cim_export_last_success_timestamp_seconds",
            "When the last successful export run ended (Unix time; absent before the first).",
            &[("", timestamp(at))],
        );
    }
    if let Some(at) = e.last_run_at {
        gauge(
            out,
            "cim_export_last_run_timestamp_seconds",
            "When the last export run that did work ended, successful or not (Unix time).",
            &[("", timestamp(at))],
        );
    }
    gauge(
        out,
        "cim_export_consecutive_failures",
        "Failed export runs since the last successful one.",
        &[("", e.consecutive_failures as f64)],
    );
    let _ = write!(
        out,
        "# HELP cim_export_runs_total Export runs recorded in the database, by outcome (busy: another process held the export lock).\n\
         # TYPE cim_export_runs_total counter\n\
         cim_export_runs_total{{outcome=\"succeeded\"}} {}\n\
         cim_export_runs_total{{outcome=\"failed\"}} {}\n\
         cim_export_runs_total{{outcome=\"busy\"}} {}\n",
        e.runs.succeeded, e.runs.failed, e.runs.busy
    );
}

/// A gauge family; each sample is (labels without braces, or "" for none; value).
fn gauge(out: &mut String, name: &str, help: &str, samples: &[(&str, f64)]) {
    let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n");
    for (labels, value) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {value}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    }
}

fn seconds(age: Option<Duration>) -> f64 {
    age.map_or(0.0, |a| a.as_secs_f64())
}

fn timestamp(at: chrono::DateTime<chrono::Utc>) -> f64 {
    at.timestamp_millis() as f64 / 1000.0
}
