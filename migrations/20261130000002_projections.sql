-- Where each projection (read model) stands in the event log. One row per projection, written by the
-- projection runner inside `cim serve` and by `cim projections rebuild` (src/projections/).
--
-- Guarantees this table carries (see docs/event-store.md, guarantees 5-7):
--   * exactly-once application: a batch of events is applied to the read model's tables and this
--     row's checkpoint is moved past the batch IN THE SAME TRANSACTION. The UPDATE is guarded by the
--     checkpoint (and definition hash) the batch started from:
--         UPDATE projection_checkpoints SET ... WHERE name = $1 AND definition_hash = $2
--                                                 AND transaction_id = $old_xid AND position = $old_pos
--     so if a second process advanced or rebuilt the projection meanwhile, the UPDATE matches no row
--     and the whole batch rolls back instead of being applied twice;
--   * rebuild on definition change: `definition_hash` identifies the code and DDL that built the
--     tables; a process whose definition differs drops the tables, recreates them and starts again
--     from the beginning of the log;
--   * resumable rebuilds: a rebuild commits per batch with status 'rebuilding'; an interrupted
--     rebuild continues from its checkpoint.
--
-- Which process may advance a projection is decided by a session-level advisory lock per projection
-- (src/projections/lock.rs), not by this table; the guard above is the safety net behind that lock.
-- The read models' own tables are NOT created here: each projection's DDL lives in
-- projections/<name>.sql and is (re)applied by the runner, so a read model can change without a
-- migration.

CREATE TABLE projection_checkpoints (
    -- The projection's stable name (`Projection::name()`), e.g. 'portfolio'. Also names the advisory
    -- lock key (a hash of it).
    name             TEXT        PRIMARY KEY,
    -- `Projection::version()` of the process that built the tables. Kept beside the hash so that an
    -- older binary (during a rolling deploy) can see that the stored definition is NEWER than its own
    -- and stand by, instead of rebuilding the projection back to the old version.
    version          INTEGER     NOT NULL CHECK (version >= 0),
    -- sha256(name, version, definition DDL) in hex: the definition the tables were built with.
    definition_hash  TEXT        NOT NULL,
    -- The last event applied, in the log's tailing order (transaction id, position); (0, 0) before
    -- the first one. The transaction id is the event's `xid8` as a bigint (the `events` table keeps
    -- xid8; compare with `($1::bigint::text::xid8, $2)` as src/store/tail.rs does).
    transaction_id   BIGINT      NOT NULL DEFAULT 0 CHECK (transaction_id >= 0),
    position         BIGINT      NOT NULL DEFAULT 0 CHECK (position >= 0),
    -- Events applied since the tables were last (re)created: the progress of a rebuild and a cheap
    -- sanity figure ("the read model has seen N events").
    events_applied   BIGINT      NOT NULL DEFAULT 0 CHECK (events_applied >= 0),
    -- 'rebuilding' from the moment the tables are recreated until the projection first catches up with
    -- the head of the log, then 'live'. Readers may consult it to tell a half-built read model from a
    -- current one.
    status           TEXT        NOT NULL CHECK (status IN ('live', 'rebuilding')),
    -- When the tables were last (re)created: how long a rebuild has been running, or how old the
    -- current build is.
    rebuilt_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Last change of this row (last committed batch, or status change).
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
