//! The Markdown table of a bench report, printed for people.

use super::Report;
use crate::stats;
use std::fmt::Write;

fn n(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else if x >= 0.1 || x == 0.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.4}")
    }
}

/// The table for people (Markdown, so it can go into the README as it is).
pub fn table(r: &Report) -> String {
    let mut s = String::new();
    let m = &r.machine;
    let _ = writeln!(
        s,
        "cim-bench ({}): {} cores, {:.0} GiB, {}; {:.0} s\n",
        r.scale, m.cores, m.memory_gib, m.postgres, r.total_seconds
    );
    let _ = writeln!(s, "| section | case | figure | p50 ms | p99 ms | ratio |");
    let _ = writeln!(s, "| --- | --- | --- | --- | --- | --- |");
    let mut row =
        |section: &str, case: String, figure: String, p50: String, p99: String, ratio: String| {
            let _ = writeln!(
                s,
                "| {section} | {case} | {figure} | {p50} | {p99} | {ratio} |"
            );
        };
    let b = &r.baseline;
    for i in &b.inserts {
        row(
            "1 baseline",
            format!("insert, {} conn ({} B row)", i.connections, b.row_bytes),
            format!("{} rows/s", n(i.rows_per_s)),
            "".into(),
            "".into(),
            "1".into(),
        );
    }
    for i in &b.inserts_with_notify {
        row(
            "1 diagnostic",
            format!("insert + NOTIFY trigger, {} conn", i.connections),
            format!("{} rows/s", n(i.rows_per_s)),
            "".into(),
            "".into(),
            n(stats::ratio(i.rows_per_s, b.at(i.connections))),
        );
    }
    row(
        "1 baseline",
        format!("COPY {} rows", b.copy.rows),
        format!("{} rows/s", n(b.copy.rows_per_s)),
        "".into(),
        "".into(),
        "".into(),
    );
    for (kind, list) in [("distinct", &r.append.distinct), ("hot", &r.append.hot)] {
        for a in list {
            row(
                "2 store append",
                format!(
                    "{} writers, {} {kind} streams{}",
                    a.writers,
                    a.streams,
                    if a.conflicts_retried > 0 {
                        format!(", {} conflicts retried", a.conflicts_retried)
                    } else {
                        String::new()
                    }
                ),
                format!("{} events/s", n(a.events_per_s)),
                n(a.p50_ms),
                n(a.p99_ms),
                n(a.ratio_to_baseline),
            );
        }
    }
    for c in &r.http.commands {
        row(
            "3 HTTP commands",
            format!(
                "{} clients, written reflection ({} errors)",
                c.clients, c.errors
            ),
            format!("{} commands/s", n(c.commands_per_s)),
            n(c.p50_ms),
            n(c.p99_ms),
            n(c.ratio_to_baseline),
        );
    }
    let rd = &r.read;
    row(
        "4 reads",
        format!(
            "GET portfolio, {} offered/s open loop, {} errors, p999 {} ms",
            n(rd.offered_per_s),
            rd.errors,
            n(rd.p999_ms)
        ),
        format!("{} req/s", n(rd.achieved_per_s)),
        n(rd.p50_ms),
        n(rd.p99_ms),
        "".into(),
    );
    if let (Some(p99), Some(share)) = (rd.server_p99_ms, rd.server_under_5ms) {
        row(
            "4 reads",
            format!(
                "  inside the server (its /metrics): p99 at most {} ms, {} % within 5 ms",
                n(p99),
                n(share * 100.0)
            ),
            "".into(),
            "".into(),
            "".into(),
            "".into(),
        );
    }
    let l = &r.log;
    row(
        "5 projections",
        format!(
            "sequential scan of {} events ({} types, {} MiB)",
            l.events,
            l.event_types.len(),
            n(l.table_mib)
        ),
        format!("{} events/s", n(l.scan_events_per_s)),
        "".into(),
        "".into(),
        "1".into(),
    );
    let rb = &r.rebuild;
    let passes = [
        (
            format!(
                "rebuild of all {} at once, {} s",
                rb.projections.len(),
                n(rb.seconds)
            ),
            rb.complete,
            rb.events_per_s,
            rb.ratio_to_scan,
            &rb.projections,
        ),
        (
            "rebuild of each alone, slowest".to_owned(),
            rb.alone_complete,
            rb.alone_events_per_s,
            rb.alone_ratio_to_scan,
            &rb.alone,
        ),
    ];
    for (case, complete, rate, ratio, each) in passes {
        let stopped = if complete {
            ""
        } else {
            " (stopped at the time budget)"
        };
        row(
            "5 projections",
            format!("{case}{stopped}"),
            format!("{} events/s", n(rate)),
            "".into(),
            "".into(),
            n(ratio),
        );
        for (case, figure) in per_projection(each) {
            row(
                "5 projections",
                case,
                figure,
                "".into(),
                "".into(),
                "".into(),
            );
        }
    }
    row(
        "5 projections",
        format!(
            "live lag under the load of 3 ({} samples, max {} ms)",
            r.live_lag.samples,
            n(r.live_lag.max_ms)
        ),
        "".into(),
        n(r.live_lag.p50_ms),
        n(r.live_lag.p99_ms),
        "".into(),
    );
    for e in std::iter::once(&r.export).chain(&r.export_small) {
        let f = &e.files;
        row(
            "6 export",
            format!(
                "{} certificates to files: {} of {} files in {} s{}",
                e.certificates,
                f.done,
                e.files_total,
                n(f.seconds),
                if f.complete {
                    ""
                } else {
                    " (stopped at the time budget)"
                }
            ),
            format!("{} certificates/s", n(f.certificates_per_s)),
            "".into(),
            "".into(),
            "".into(),
        );
        if let Some(l) = &e.ladok {
            row(
                "6 export",
                format!(
                    "{} certificates to the fake Ladok: {} delivered, {} failed in {} s{}",
                    e.certificates,
                    l.done,
                    l.failed,
                    n(l.seconds),
                    if l.complete {
                        ""
                    } else {
                        " (stopped at the time budget)"
                    }
                ),
                format!("{} certificates/s", n(l.certificates_per_s)),
                "".into(),
                "".into(),
                "".into(),
            );
        }
    }
    let mm = &r.memory;
    row(
        "7 memory",
        "cim serve idle: VmRSS (VmHWM)".into(),
        format!("{} MiB ({} MiB)", n(mm.idle_rss_mib), n(mm.idle_hwm_mib)),
        "".into(),
        "".into(),
        "".into(),
    );
    row(
        "7 memory",
        "cim serve under load: max VmRSS (VmHWM)".into(),
        format!(
            "{} MiB ({} MiB)",
            n(mm.load_rss_max_mib),
            n(mm.load_hwm_mib)
        ),
        "".into(),
        "".into(),
        "".into(),
    );
    let _ = writeln!(s, "\n| target | measured | wanted | |");
    let _ = writeln!(s, "| --- | --- | --- | --- |");
    for t in &r.targets {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            t.name,
            n(t.measured),
            t.target,
            if t.met { "met" } else { "**missed**" }
        );
    }
    s
}

/// A row's case and figure for each projection of a rebuild.
fn per_projection(rebuilds: &[super::ProjectionRebuild]) -> Vec<(String, String)> {
    rebuilds
        .iter()
        .map(|p| {
            (
                format!(
                    "  {}: {} events in {} s{}",
                    p.name,
                    p.events,
                    n(p.seconds),
                    if p.complete { "" } else { ", stopped" }
                ),
                format!("{} events/s", n(p.events_per_s)),
            )
        })
        .collect()
}
