-- What the export worker's runs did (src/export/worker/runs.rs), so that operations can see from the
-- database, on any process, whether the nightly export still succeeds: `/metrics`, `/readyz` and the
-- health watch read it through `ops::health::snapshot`. The log stays the truth about batches and
-- deliveries; these rows only say when a run happened and how it ended.

-- One row per run of `run_export` (the cron job of `cim serve`, `cim export run`, the tests),
-- written when the run ends. A run killed in the middle writes nothing: the "no success for 26 h"
-- alert notices the missing success all the same.
CREATE TABLE export_runs (
    id bigserial PRIMARY KEY,
    started_at timestamptz NOT NULL,
    finished_at timestamptz NOT NULL,
    -- succeeded: the run worked until nothing was left (Ladok refusing single certificates is still a
    -- successful run; those certificates wait in rm_certificates); failed: the run stopped on an
    -- error; busy: another process held the export lock, so this one did nothing.
    outcome text NOT NULL CHECK (outcome IN ('succeeded', 'failed', 'busy')),
    -- For a failed run, a stable code (`WorkerError::code`, e.g. `database`, `ladok_client`),
    -- never an error's text, which may name a path or quote a server's answer.
    error_code text,
    CHECK ((outcome = 'failed') = (error_code IS NOT NULL))
);

-- "The last success" and "failures since then" read the newest rows of one outcome; pruning reads
-- the oldest.
CREATE INDEX export_runs_outcome_idx ON export_runs (outcome, finished_at);
CREATE INDEX export_runs_finished_idx ON export_runs (finished_at);

-- Runs ever recorded, by outcome: the counter `cim_export_runs_total{outcome}`. Kept apart because
-- `export_runs` is pruned (90 days), and a Prometheus counter must never go down.
CREATE TABLE export_run_totals (
    outcome text PRIMARY KEY CHECK (outcome IN ('succeeded', 'failed', 'busy')),
    runs bigint NOT NULL DEFAULT 0 CHECK (runs >= 0)
);
INSERT INTO export_run_totals (outcome) VALUES ('succeeded'), ('failed'), ('busy');
