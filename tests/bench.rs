//! `cim bench --quick` runs every section against the test database server and reports every figure.
//! Not a timed test: it checks that the bench works and that its figures are sane (finite, positive
//! where something was measured), never how fast anything is.

mod support;

use serde_json::Value;
use std::process::Command;

#[tokio::test(flavor = "multi_thread")]
async fn the_quick_bench_reports_every_section_with_sane_figures() {
    let server = support::server_url().await.to_owned();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_cim"))
            .args(["bench", "--quick", "--json"])
            .env("DATABASE_URL", server)
            .env("CIM_LOG", "warn")
            .output()
            .expect("run cim bench")
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "cim bench failed:\n{stderr}");
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
    let projections = report["rebuild"]["projections"].as_array().unwrap();
    assert_eq!(projections.len(), cim::projections::all().len());
    for p in projections {
        assert!(p["events"].as_u64().unwrap() > 0, "{p}");
    }
    assert!(!report["targets"].as_array().unwrap().is_empty());
}
