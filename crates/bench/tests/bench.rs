//! `cim-bench --quick` runs every section against the test database server and reports every figure.
//! Not a timed test: it checks that the bench works and that its figures are sane (finite, positive
//! where something was measured), never how fast anything is.

#[path = "../../../tests/support/database.rs"]
mod support;

use serde_json::Value;
use std::process::Command;

/// Held by each test here for its whole run: the tests of one binary run in parallel, and the
/// quick bench saturates the database server on purpose (bulk inserts, `COPY`, rebuilds), which on a
/// small machine holds the soak's requests past the pool's acquire timeout (503). The soak proves
/// the service free of errors under its own traffic, not under a benchmark's.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread")]
async fn the_quick_bench_reports_every_section_with_sane_figures() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let server = support::server_url().await.to_owned();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_cim-bench"))
            .args(["--quick", "--json"])
            .env("DATABASE_URL", server)
            .env("CIM_LOG", "warn")
            .output()
            .expect("run cim-bench")
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "cim-bench failed:\n{stderr}");
    let report: Value = serde_json::from_slice(&output.stdout).expect("the report is JSON");

    // Every number anywhere in the report is finite and not negative.
    fn walk(path: &str, v: &Value) {
        match v {
            Value::Number(n) => {
                let x = n.as_f64().unwrap();
                assert!(x.is_finite() && x >= 0.0, "{path} = {x}");
            }
            Value::Array(items) => items
                .iter()
                .enumerate()
                .for_each(|(i, v)| walk(&format!("{path}[{i}]"), v)),
            Value::Object(map) => map
                .iter()
                .for_each(|(k, v)| walk(&format!("{path}.{k}"), v)),
            _ => {}
        }
    }
    walk("", &report);

    let positive = |pointer: &str| {
        let x = report
            .pointer(pointer)
            .and_then(Value::as_f64)
            .unwrap_or_else(|| panic!("{pointer} is missing from the report"));
        assert!(x > 0.0, "{pointer} = {x}");
    };
    for i in 0..3 {
        positive(&format!("/baseline/inserts/{i}/rows_per_s"));
        positive(&format!("/append/distinct/{i}/events_per_s"));
        positive(&format!("/append/distinct/{i}/ratio_to_baseline"));
        positive(&format!("/append/distinct/{i}/p99_ms"));
    }
    positive("/baseline/copy/rows_per_s");
    positive("/baseline/row_bytes");
    for i in 0..2 {
        positive(&format!("/append/hot/{i}/events_per_s"));
        positive(&format!("/http/commands/{i}/commands_per_s"));
        positive(&format!("/http/commands/{i}/ratio_to_baseline"));
        positive(&format!("/http/commands/{i}/p99_ms"));
    }
    for p in [
        "/read/achieved_per_s",
        "/read/p99_ms",
        "/read/p999_ms",
        "/log/events",
        "/log/scan_events_per_s",
        "/rebuild/events_per_s",
        "/rebuild/ratio_to_scan",
        "/rebuild/alone_events_per_s",
        "/rebuild/alone_ratio_to_scan",
        "/live_lag/samples",
        "/export/certificates",
        "/export/files/done",
        "/export/files/certificates_per_s",
        "/export/ladok/done",
        "/export/ladok/certificates_per_s",
        "/memory/idle_rss_mib",
        "/memory/load_hwm_mib",
        "/machine/cores",
    ] {
        positive(p);
    }
    assert_eq!(report["read"]["errors"], 0, "reads failed: {stderr}");
    // The quick sizes finish within their budgets: every file written, every certificate delivered.
    let export = &report["export"];
    assert_eq!(export["files"]["complete"], true, "{export}");
    assert_eq!(export["files"]["done"], export["files_total"], "{export}");
    assert_eq!(export["ladok"]["failed"], 0, "{export}");
    assert_eq!(
        export["ladok"]["done"], export["certificates"],
        "every exported certificate reaches the fake Ladok"
    );
    // The generated log holds events of every kind the rules produce, and each projection applied it.
    let types = report["log"]["event_types"].as_array().unwrap();
    for t in [
        "PortfolioOpened",
        "ActivityLogged",
        "ReflectionSubmitted",
        "ReflectionReturned",
        "CertificateApproved",
        "CertificateRevoked",
    ] {
        assert!(types.iter().any(|x| x == t), "no {t} in {types:?}");
    }
    // All at once, and each alone: every projection applied it, and (the quick log being small)
    // finished, deferred indexes included.
    for pass in ["projections", "alone"] {
        let projections = report["rebuild"][pass].as_array().unwrap();
        assert_eq!(projections.len(), cim::projections::all().len());
        for p in projections {
            assert!(p["events"].as_u64().unwrap() > 0, "{p}");
            assert_eq!(p["complete"], true, "{p}");
        }
    }
    assert!(!report["targets"].as_array().unwrap().is_empty());
}

/// The first number after `label` in `line`.
fn number_after(line: &str, label: &str) -> f64 {
    let rest = &line[line
        .find(label)
        .unwrap_or_else(|| panic!("no {label:?} in {line:?}"))
        + label.len()..]
        .trim_start();
    let number: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    number
        .parse()
        .unwrap_or_else(|_| panic!("no number after {label:?} in {line:?}"))
}

/// `cim-bench soak` for a minute against a real `cim serve`: students, coordinators and the
/// registrar with its export runs, a line per window with its figures, the closing comparison of
/// the last window with the first, mixed traffic really sent, and not one failed request (any 5xx,
/// any status other than the one a request must get, a review that never shows: the command exits
/// non-zero when there is one). Never how fast. A minute, so that a regression that needs some
/// traffic to show (a leak of connections, a lost wake-up) shows in CI; `CIM_SOAK_SECONDS` runs it
/// longer by hand (see "Soak" in docs/performance.md).
#[tokio::test(flavor = "multi_thread")]
async fn a_short_soak_prints_every_window_and_the_closing_figures_without_errors() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let server = support::server_url().await.to_owned();
    let seconds: u64 = std::env::var("CIM_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let (duration, window) = (format!("{seconds}s"), format!("{}s", (seconds / 3).max(1)));
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_cim-bench"))
            .args(["soak", "--duration", &duration, "--window", &window])
            .args(["--students", "4", "--export-every", "5s"])
            .env("DATABASE_URL", server)
            .env("CIM_LOG", "warn")
            .output()
            .expect("run cim-bench soak")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "cim-bench soak failed:\n{stdout}\n{stderr}"
    );

    let windows: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("window "))
        .collect();
    assert_eq!(windows.len(), 3, "{stdout}");
    for line in &windows {
        assert!(number_after(line, "): ") > 0.0, "requests/s: {line}");
        assert_eq!(number_after(line, "req/s, "), 0.0, "errors: {line}");
        assert!(number_after(line, "p99 ") > 0.0, "{line}");
        assert!(
            number_after(line, "RSS ") > 1.0,
            "the server's VmRSS in MiB: {line}"
        );
    }
    let line = |prefix: &str| -> &str {
        stdout
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line {prefix:?} in:\n{stdout}"))
    };
    let totals = line("soak: ");
    assert_eq!(number_after(totals, "requests, "), 0.0, "errors: {totals}");
    assert!(
        number_after(totals, "errors; ") > 0.0,
        "portfolios opened: {totals}"
    );
    assert!(
        number_after(totals, "portfolios opened, ") > 0.0,
        "reviews: {totals}"
    );
    assert!(
        number_after(totals, "certificates, ") > 0.0,
        "export runs: {totals}"
    );
    assert!(
        number_after(totals, "export runs, ") > 0.0,
        "bad requests refused: {totals}"
    );
    let half = line("RSS MiB over the second half: ");
    assert!(number_after(half, "at its start ") > 0.0, "{half}");
    assert!(number_after(half, "last/start ") > 0.0, "{half}");
    for prefix in ["RSS MiB: ", "throughput req/s: ", "latency p99 ms: "] {
        let figures = line(prefix);
        assert!(number_after(figures, "first window ") > 0.0, "{figures}");
        assert!(number_after(figures, "last window ") > 0.0, "{figures}");
        assert!(number_after(figures, "last/first ") > 0.0, "{figures}");
    }
    assert!(number_after(line("RSS MiB: "), "max ") > 0.0);
}
