//! What the admin's and the coordinator's program pages both show: a program as the API's
//! `ProgramView` (folded from its stream), its rules one row per rule, and the rules' versions.
//! The texts are the admin area's (`admin-…` in `locales/<lang>/admin.ftl`).

use super::Console;
use super::i18n::Lang;
use crate::domain::{ProgramId, ProgramRules, ProgramState};
use crate::http::view::ProgramView;
use chrono::{DateTime, Utc};
use maud::{Markup, html};

pub type Failure = Box<dyn std::error::Error + Send + Sync>;

/// The program as `GET /programs/{id}` shows it; `None` when no such program is registered.
pub async fn program(console: &Console, id: ProgramId) -> Result<Option<ProgramView>, Failure> {
    let (state, version) = console.app.commands.load_program(id).await?;
    Ok(match &*state {
        ProgramState::Registered(p) => Some(ProgramView::new(p, version)),
        ProgramState::Unregistered => None,
    })
}

/// One version of a program's rules: when it came into force and by whom.
#[derive(Debug)]
pub struct RulesVersion {
    version: Option<i32>,
    at: DateTime<Utc>,
    by: String,
}

pub async fn rules_versions(
    console: &Console,
    id: ProgramId,
) -> Result<Vec<RulesVersion>, Failure> {
    let rows = sqlx::query!(
        r#"SELECT (payload->>'rules_version')::int AS rules_version, recorded_at, actor_id
           FROM events
           WHERE stream_id = $1 AND event_type IN ('ProgramRegistered', 'RulesChanged')
           ORDER BY version DESC"#,
        format!("program-{id}"),
    )
    .fetch_all(&console.app.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| RulesVersion {
            version: r.rules_version,
            at: r.recorded_at,
            by: r.actor_id,
        })
        .collect())
}

/// The rules in force, one row per rule, in the page's language.
pub fn rules_table(lang: Lang, rules: &ProgramRules) -> Markup {
    let band = |min: u32, max: u32| {
        lang.t_with(
            "admin-words",
            &[
                ("min", i64::from(min).into()),
                ("max", i64::from(max).into()),
            ],
        )
    };
    let seconds = |s: u32| lang.t_with("admin-seconds", &[("s", i64::from(s).into())]);
    let yes_no = |b: bool| lang.t(if b { "admin-yes" } else { "admin-no" });
    let rows: Vec<(&str, String)> = vec![
        ("admin-rule-required", rules.required_activities.to_string()),
        ("admin-rule-repeat", yes_no(rules.allow_repeat_items)),
        (
            "admin-rule-written",
            band(rules.written.min, rules.written.max),
        ),
        (
            "admin-rule-oral",
            format!(
                "{} – {} (± {})",
                seconds(rules.oral.min_s),
                seconds(rules.oral.max_s),
                seconds(rules.oral.tolerance_s)
            ),
        ),
        (
            "admin-rule-instagram",
            lang.t_with(
                "admin-posts",
                &[
                    ("n", i64::from(rules.instagram.min_posts).into()),
                    (
                        "words",
                        band(rules.instagram.words.min, rules.instagram.words.max).into(),
                    ),
                ],
            ),
        ),
        (
            "admin-rule-final-written",
            band(rules.final_written.min, rules.final_written.max),
        ),
        ("admin-rule-final-oral", seconds(rules.final_oral_min_s)),
        (
            "admin-rule-deadline",
            lang.t_with(
                "admin-days",
                &[("n", i64::from(rules.final_deadline_offset_days).into())],
            ),
        ),
        ("admin-rule-declared", yes_no(rules.allow_declared_duration)),
        (
            "admin-rule-video-hosts",
            if rules.video_platform_hosts.is_empty() {
                lang.t("admin-none")
            } else {
                rules.video_platform_hosts.join(", ")
            },
        ),
    ];
    html! {
        table aria-label=(lang.t("admin-rules-heading")) {
            thead { tr {
                th scope="col" { (lang.t("admin-col-rule")) }
                th scope="col" { (lang.t("admin-col-value")) }
            } }
            tbody { @for (key, value) in &rows {
                tr { td { (lang.t(key)) } td { (value) } }
            } }
        }
    }
}

/// The rules' versions, newest first: when each came into force and by whom.
pub fn versions_table(lang: Lang, versions: &[RulesVersion]) -> Markup {
    html! {
        table aria-label=(lang.t("admin-versions-heading")) {
            thead { tr {
                th scope="col" class="num" { (lang.t("admin-col-rules-version")) }
                th scope="col" { (lang.t("admin-col-since")) }
                th scope="col" { (lang.t("admin-col-by")) }
            } }
            tbody { @for v in versions {
                tr {
                    td.num { @if let Some(n) = v.version { (n) } }
                    td { (lang.date_time(v.at)) }
                    td { (v.by) }
                }
            } }
        }
    }
}
