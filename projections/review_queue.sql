-- Read model `review_queue` (src/projections/read_models/review_queue.rs): everything that waits for a
-- coordinator of a program, so the coordinator's inbox is one indexed range scan.
--
-- One row per item waiting:
--   * 'reflection':        an activity reflection attempt submitted and not yet reviewed;
--   * 'final_reflection':  a final reflection attempt submitted and not yet reviewed;
--   * 'application':       an application for the certificate not yet decided;
--   * 'completion_proposal': a student's proposed expected completion date not yet accepted or
--                          declined (`attempt` is the proposal's number; a newer one replaces it);
--   * 'completion_confirmation': the expected completion date given at enrolment, not yet confirmed or
--                          set by a coordinator (`attempt` is 1; the first final reflection waits for it).
-- A row is inserted by the submitting event and deleted by the event that settles it (approved,
-- returned, withdrawn, rejected, certificate approved). Nothing personal: the reflection's content is
-- in `events.personal` and the coordinator opens it through the portfolio.
--
-- `submitted_at` is the submitting event's `recorded_at`; how long an item has waited is computed at
-- query time from the caller's `now`, never stored (rebuild = live).

CREATE TABLE rm_review_queue (
    -- The submitting event's global position: unique, and the tie-breaker of "oldest first".
    position           BIGINT      PRIMARY KEY,
    program_id         UUID        NOT NULL,
    portfolio_id       UUID        NOT NULL,
    item_kind          TEXT        NOT NULL
        CHECK (item_kind IN ('reflection', 'final_reflection', 'application', 'completion_proposal',
                              'completion_confirmation')),
    -- The activity a 'reflection' is about; NULL for the other kinds.
    activity_id        UUID,
    -- The attempt number (reflections) or the application number (applications).
    attempt            INTEGER     NOT NULL,
    -- The catalog item's name as logged, for 'reflection'.
    item_name          TEXT,
    -- written | oral | instagram (reflections), written | oral (final reflections).
    format             TEXT,
    word_count         INTEGER,
    duration_s         INTEGER,
    -- FALSE: the recording's duration is the student's declaration; the coordinator should check it.
    duration_measured  BOOLEAN,
    link_count         INTEGER,
    submitted_at       TIMESTAMPTZ NOT NULL,
    -- upload | link | declared: what an oral reflection rests on (NULL for other formats and for
    -- attempts submitted before it was recorded).
    recording          TEXT
);

-- At most one waiting item per (portfolio, kind, activity): the domain allows one open attempt, so a
-- second row would mean a settling event was missed. The nil UUID stands for "no activity" because a
-- plain UNIQUE treats NULLs as distinct (and NULLS NOT DISTINCT needs PostgreSQL 15). Its leading
-- columns also serve the DELETEs of settling events.
CREATE UNIQUE INDEX rm_review_queue_item_key ON rm_review_queue
    (portfolio_id, item_kind, COALESCE(activity_id, '00000000-0000-0000-0000-000000000000'::uuid));

-- The inbox: one program's waiting items, oldest first.
CREATE INDEX rm_review_queue_program_idx ON rm_review_queue (program_id, submitted_at, position);
