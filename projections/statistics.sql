-- Read model `statistics` (src/projections/read_models/statistics.rs): the pilot evaluation of
-- 2025/2026, per program and overall (students started, steps reached, time from first activity to
-- approval, activity and reflection-format mix, how often reflections are returned, drop-off).
--
-- PSEUDONYMOUS BY CONSTRUCTION: one row per portfolio keyed by the portfolio id, with the program id and
-- counts, dates, formats and catalog item ids only. No student UID, no name, no identity number, no
-- text written by anyone. (The portfolio id can be linked to a student through `rm_portfolios`, which
-- is why this is pseudonymous and not anonymous; the evaluation only ever needs the aggregates.)
--
-- Rows are rebuilt from the portfolio's whole stream on each of its events, so every figure is a pure
-- function of the log. Times are events' `recorded_at`; "inactive for N days" is computed at query
-- time from the caller's `now`.

CREATE TABLE rm_stats_portfolios (
    portfolio_id             UUID        PRIMARY KEY,
    program_id               UUID        NOT NULL,
    -- recorded_at of the opening event, of the portfolio's last event (any actor), and of the last
    -- event the student caused (drop-off is about the student going quiet).
    opened_at                TIMESTAMPTZ NOT NULL,
    last_event_at            TIMESTAMPTZ NOT NULL,
    last_student_event_at    TIMESTAMPTZ,
    -- The steps of the student's path (statistics::Step, in order). `reached_*` is TRUE once the
    -- portfolio has EVER met the step, even if it later fell back (a withdrawn activity): the
    -- evaluation asks how far students got. Steps that count activities use the program's rules in
    -- force when the portfolio last changed (required activities, distinct items).
    reached_activity_logged          BOOLEAN NOT NULL,
    reached_activities_logged        BOOLEAN NOT NULL,
    reached_reflections_submitted    BOOLEAN NOT NULL,
    reached_reflections_approved     BOOLEAN NOT NULL,
    reached_final_reflection_submitted BOOLEAN NOT NULL,
    reached_final_reflection_approved  BOOLEAN NOT NULL,
    reached_applied                  BOOLEAN NOT NULL,
    reached_certified                BOOLEAN NOT NULL,
    -- The furthest step ever reached, and the step the portfolio is at now (for "stuck at step X").
    furthest_step            TEXT        NOT NULL,
    current_step             TEXT        NOT NULL,
    -- Activities logged (withdrawn included) and withdrawn.
    activities_logged        INTEGER     NOT NULL,
    activities_withdrawn     INTEGER     NOT NULL,
    -- Activity reflection attempts submitted, and how they were reviewed (every attempt counts, so a
    -- returned and resubmitted reflection is 2 submitted, 1 returned).
    reflections_submitted    INTEGER     NOT NULL,
    reflections_returned     INTEGER     NOT NULL,
    reflections_approved     INTEGER     NOT NULL,
    -- Reflection formats chosen: the latest attempt of each activity that is not withdrawn.
    written_reflections      INTEGER     NOT NULL,
    oral_reflections         INTEGER     NOT NULL,
    instagram_reflections    INTEGER     NOT NULL,
    -- Final reflection attempts, returns, and the format of the latest attempt.
    final_submitted          INTEGER     NOT NULL,
    final_returned           INTEGER     NOT NULL,
    final_format             TEXT,
    applications             INTEGER     NOT NULL,
    rejections               INTEGER     NOT NULL,
    -- Catalog item ids (slugs, not names, not descriptions) of the activities not withdrawn.
    catalog_items            TEXT[]      NOT NULL,
    -- The earliest start date of any activity logged, the approval (decision) date, and the days from
    -- one to the other: "time from first activity to approval".
    first_activity_on        DATE,
    approved_on              DATE,
    days_to_approval         INTEGER,
    revoked_on               DATE,
    -- recorded_at of the event that last changed the row.
    updated_at               TIMESTAMPTZ NOT NULL
);

-- Per-program aggregates.
CREATE INDEX rm_stats_portfolios_program_idx ON rm_stats_portfolios (program_id);
