-- Read model `portfolio` (src/projections/read_models/portfolio.rs): every student's portfolio as it
-- stands, for the student's own page and the coordinator's list of their program's portfolios.
--
-- One row per opened portfolio. The full non-personal view (activities, every reflection attempt and
-- its review, final reflection, application, certificate, deadline and "what to do next") is the JSONB
-- `view`, built by the pure `PortfolioView::build`; the columns beside it are the keys the API filters
-- and sorts on.
--
-- Deliberately NOT here:
--   * personal data (identity number, name, e-mail, descriptions, reflection texts, feedback, reasons):
--     it stays only in `events.personal`, and the query function folds it from there when the student
--     or a coordinator opens the portfolio. Erasing it in `events` therefore erases it everywhere;
--   * anything that depends on today (days left until the deadline, overdue): computed at query time
--     from `deadline`, so that a row rebuilt next year equals the row maintained live today;
--   * `now()`: `updated_at` is the `recorded_at` of the event that last changed the row.

CREATE TABLE rm_portfolios (
    portfolio_id       UUID        PRIMARY KEY,
    program_id         UUID        NOT NULL,
    -- Ladok's student UID: how the student finds their own portfolio ("my portfolios").
    student_uid        UUID        NOT NULL,
    -- The portfolio stream's version the row was built from: the ETag the API hands out, and the
    -- bound up to which personal content is folded when the row is shown.
    version            INTEGER     NOT NULL,
    -- PhaseName::as_str(): collecting | applied | certified | revoked.
    phase              TEXT        NOT NULL
        CHECK (phase IN ('collecting', 'applied', 'certified', 'revoked')),
    -- The final reflection's last day (Stockholm date, inclusive), after extensions.
    deadline           DATE        NOT NULL,
    deadline_extended  BOOLEAN     NOT NULL,
    -- Whether the deadline still binds (no final reflection submitted yet, still collecting): the
    -- coordinator's "who is running out of time" list filters on it.
    deadline_binding   BOOLEAN     NOT NULL,
    -- PortfolioView as JSON (serde of src/projections/read_models/view.rs). Rewritten on every event
    -- of the portfolio, and a few kB: compressed with lz4, which costs a fraction of the default
    -- pglz, and kept in the row (storage MAIN, below) instead of the TOAST table (see
    -- docs/performance.md, "Issue 18, fourth round").
    view               JSONB       COMPRESSION lz4 NOT NULL,
    -- recorded_at of the last event that changed the row (never now(): rebuild = live).
    updated_at         TIMESTAMPTZ NOT NULL
);

-- A compressed view (about 2.5 kB for 13 activities) stays in its row as long as the row fits a page:
-- no TOAST rows written and deleted with every event. (Storage is not part of CREATE TABLE before
-- PostgreSQL 16.)
ALTER TABLE rm_portfolios ALTER COLUMN view SET STORAGE MAIN;

-- The coordinator's list: one program's portfolios, by phase, paged by portfolio id.
CREATE INDEX rm_portfolios_program_idx ON rm_portfolios (program_id, phase, portfolio_id);

-- The student's "my portfolios".
CREATE INDEX rm_portfolios_student_idx ON rm_portfolios (student_uid);

-- Deadlines coming up, per program, among portfolios the deadline still binds.
CREATE INDEX rm_portfolios_deadline_idx ON rm_portfolios (program_id, deadline)
    WHERE deadline_binding;
