//! The statistics' queries: the rows aggregated per program or overall, nothing that identifies a
//! student.

use super::*;

/// How many portfolios reached (or sit at) a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StepCount {
    pub step: Step,
    pub portfolios: i64,
}

/// How often something occurs (a catalog item, a reflection format).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Share {
    pub key: String,
    pub count: i64,
}

/// A distribution of whole days.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DaysSummary {
    /// How many portfolios the figures are over.
    pub portfolios: i64,
    pub mean_days: Option<f64>,
    pub median_days: Option<f64>,
}

/// The pilot evaluation's figures for one program, or overall (`program_id: None`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PilotStatistics {
    pub program_id: Option<ProgramId>,
    pub students_started: i64,
    /// For every step of [`Step::ALL`], how many portfolios ever reached it.
    pub reached: Vec<StepCount>,
    /// Certificates approved (including later revoked ones), and revoked.
    pub approved: i64,
    pub revoked: i64,
    /// Days from the first activity's start to the approval, over approved portfolios.
    pub first_activity_to_approval: DaysSummary,
    /// Catalog items of the activities logged (not withdrawn), most frequent first.
    pub activity_mix: Vec<Share>,
    /// Formats of the activity reflections (latest attempt per activity), most frequent first.
    pub reflection_formats: Vec<Share>,
    /// Final reflection formats (latest attempt), most frequent first.
    pub final_formats: Vec<Share>,
    pub reflections_submitted: i64,
    pub reflections_returned: i64,
    /// Returned / submitted attempts; `None` before any submission.
    pub return_rate: Option<f64>,
    pub final_reflections_submitted: i64,
    pub final_reflections_returned: i64,
    pub applications_rejected: i64,
}

fn reached_column(step: Step) -> Option<&'static str> {
    Some(match step {
        Step::Started => return None,
        Step::ActivityLogged => "reached_activity_logged",
        Step::ActivitiesLogged => "reached_activities_logged",
        Step::ReflectionsSubmitted => "reached_reflections_submitted",
        Step::ReflectionsApproved => "reached_reflections_approved",
        Step::FinalReflectionSubmitted => "reached_final_reflection_submitted",
        Step::FinalReflectionApproved => "reached_final_reflection_approved",
        Step::Applied => "reached_applied",
        Step::Certified => "reached_certified",
    })
}

fn sorted(mut shares: Vec<Share>) -> Vec<Share> {
    shares.retain(|s| s.count > 0);
    shares.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
    shares
}

/// The portfolios opened in `[from, until)`: a cohort (the console's academic year), or all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Opened {
    pub from: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

/// The figures for `program`, or over every program when `None`.
pub async fn statistics(
    pool: &PgPool,
    program: Option<ProgramId>,
) -> Result<PilotStatistics, ReadError> {
    statistics_opened(pool, program, Opened::default()).await
}

/// [`statistics`] over the portfolios opened in `opened`.
pub async fn statistics_opened(
    pool: &PgPool,
    program: Option<ProgramId>,
    opened: Opened,
) -> Result<PilotStatistics, ReadError> {
    let program_uuid = program.map(|p| *p.as_uuid());
    let (from, until) = (opened.from, opened.until);
    let reached_sql: Vec<String> = Step::ALL
        .iter()
        .filter_map(|s| reached_column(*s))
        .map(|c| format!("count(*) FILTER (WHERE {c}) AS {c}"))
        .collect();
    // Dynamic: one `count(*) FILTER` column per step of `Step::ALL` that has a `reached_*` column.
    let row: PgRow = sqlx::query(&format!(
        "SELECT count(*) AS started, {},
                count(*) FILTER (WHERE revoked_on IS NOT NULL) AS revoked,
                count(days_to_approval) AS approval_portfolios,
                avg(days_to_approval)::float8 AS mean_days,
                percentile_cont(0.5) WITHIN GROUP (ORDER BY days_to_approval) AS median_days,
                COALESCE(sum(reflections_submitted), 0)::bigint AS submitted,
                COALESCE(sum(reflections_returned), 0)::bigint AS returned,
                COALESCE(sum(final_submitted), 0)::bigint AS final_submitted,
                COALESCE(sum(final_returned), 0)::bigint AS final_returned,
                COALESCE(sum(rejections), 0)::bigint AS rejections,
                COALESCE(sum(written_reflections), 0)::bigint AS written,
                COALESCE(sum(oral_reflections), 0)::bigint AS oral,
                COALESCE(sum(instagram_reflections), 0)::bigint AS instagram
         FROM rm_stats_portfolios
         WHERE ($1::uuid IS NULL OR program_id = $1)
           AND ($2::timestamptz IS NULL OR opened_at >= $2)
           AND ($3::timestamptz IS NULL OR opened_at < $3)",
        reached_sql.join(", ")
    ))
    .bind(program_uuid)
    .bind(from)
    .bind(until)
    .fetch_one(pool)
    .await?;
    let started: i64 = row.try_get("started")?;
    let mut reached = Vec::with_capacity(Step::ALL.len());
    for step in Step::ALL {
        let portfolios = match reached_column(step) {
            Some(column) => row.try_get(column)?,
            None => started,
        };
        reached.push(StepCount { step, portfolios });
    }
    let submitted: i64 = row.try_get("submitted")?;
    let returned: i64 = row.try_get("returned")?;
    let activity_mix = sqlx::query_as!(
        Share,
        r#"SELECT item AS "key!", count(*) AS "count!"
         FROM rm_stats_portfolios, unnest(catalog_items) AS item
         WHERE ($1::uuid IS NULL OR program_id = $1)
           AND ($2::timestamptz IS NULL OR opened_at >= $2)
           AND ($3::timestamptz IS NULL OR opened_at < $3)
         GROUP BY item"#,
        program_uuid,
        from,
        until,
    )
    .fetch_all(pool)
    .await?;
    let final_formats = sqlx::query_as!(
        Share,
        r#"SELECT final_format AS "key!", count(*) AS "count!" FROM rm_stats_portfolios
         WHERE final_format IS NOT NULL AND ($1::uuid IS NULL OR program_id = $1)
           AND ($2::timestamptz IS NULL OR opened_at >= $2)
           AND ($3::timestamptz IS NULL OR opened_at < $3)
         GROUP BY final_format"#,
        program_uuid,
        from,
        until,
    )
    .fetch_all(pool)
    .await?;
    let reflection_formats = [
        ReflectionFormat::Written,
        ReflectionFormat::Oral,
        ReflectionFormat::Instagram,
    ]
    .into_iter()
    .map(|f| {
        let key = serde_name(f);
        Ok(Share {
            count: row.try_get(key.as_str())?,
            key,
        })
    })
    .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(PilotStatistics {
        program_id: program,
        students_started: started,
        approved: row.try_get("reached_certified")?,
        reached,
        revoked: row.try_get("revoked")?,
        first_activity_to_approval: DaysSummary {
            portfolios: row.try_get("approval_portfolios")?,
            mean_days: row.try_get("mean_days")?,
            median_days: row.try_get("median_days")?,
        },
        activity_mix: sorted(activity_mix),
        reflection_formats: sorted(reflection_formats),
        final_formats: sorted(final_formats),
        reflections_submitted: submitted,
        reflections_returned: returned,
        return_rate: (submitted > 0).then(|| returned as f64 / submitted as f64),
        final_reflections_submitted: row.try_get("final_submitted")?,
        final_reflections_returned: row.try_get("final_returned")?,
        applications_rejected: row.try_get("rejections")?,
    })
}

/// [`statistics`] for every program that has a portfolio, by program id.
pub async fn statistics_per_program(pool: &PgPool) -> Result<Vec<PilotStatistics>, ReadError> {
    let programs = sqlx::query_scalar!(
        "SELECT DISTINCT program_id FROM rm_stats_portfolios ORDER BY program_id"
    )
    .fetch_all(pool)
    .await?;
    let mut out = Vec::with_capacity(programs.len());
    for program in programs {
        out.push(statistics(pool, Some(ProgramId::new(program))).await?);
    }
    Ok(out)
}

/// Students who went quiet: portfolios not (yet) certified whose student has caused no event for
/// `inactive_days` days before `now`, and at which step they are stuck.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DropOff {
    pub program_id: Option<ProgramId>,
    pub now: DateTime<Utc>,
    pub inactive_days: u32,
    /// Portfolios without a certificate (revoked ones excluded: they are closed).
    pub open: i64,
    /// Of those, the ones inactive for at least `inactive_days`.
    pub inactive: i64,
    /// The inactive ones by the step they are at now, in path order (steps with none left out).
    pub stuck: Vec<StepCount>,
}

/// Drop-off at `now` for `program` (or overall).
pub async fn drop_off(
    pool: &PgPool,
    program: Option<ProgramId>,
    now: DateTime<Utc>,
    inactive_days: u32,
) -> Result<DropOff, ReadError> {
    drop_off_opened(pool, program, Opened::default(), now, inactive_days).await
}

/// [`drop_off`] among the portfolios opened in `opened`.
pub async fn drop_off_opened(
    pool: &PgPool,
    program: Option<ProgramId>,
    opened: Opened,
    now: DateTime<Utc>,
    inactive_days: u32,
) -> Result<DropOff, ReadError> {
    let cutoff = now - TimeDelta::days(i64::from(inactive_days));
    let rows = sqlx::query!(
        r#"SELECT current_step, count(*) AS "all!",
                count(*) FILTER (WHERE COALESCE(last_student_event_at, opened_at) <= $2) AS "quiet!"
         FROM rm_stats_portfolios
         WHERE NOT reached_certified AND ($1::uuid IS NULL OR program_id = $1)
           AND ($3::timestamptz IS NULL OR opened_at >= $3)
           AND ($4::timestamptz IS NULL OR opened_at < $4)
         GROUP BY current_step"#,
        program.map(|p| *p.as_uuid()),
        cutoff,
        opened.from,
        opened.until,
    )
    .fetch_all(pool)
    .await?;
    let mut stuck = Vec::new();
    let (mut open, mut inactive) = (0, 0);
    for row in rows {
        let (step, all, quiet) = (row.current_step, row.all, row.quiet);
        let step = Step::parse(&step).ok_or_else(|| {
            crate::projections::read_models::undecodable(format!(
                "unknown step {step:?} in rm_stats_portfolios"
            ))
        })?;
        open += all;
        inactive += quiet;
        if quiet > 0 {
            stuck.push(StepCount {
                step,
                portfolios: quiet,
            });
        }
    }
    stuck.sort_by_key(|s| s.step);
    Ok(DropOff {
        program_id: program,
        now,
        inactive_days,
        open,
        inactive,
        stuck,
    })
}
