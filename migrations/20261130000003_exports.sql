-- Bookkeeping of the export worker (src/export/worker/). The event log stays the source of truth:
-- every batch is a stream `export-batch-{batch id}` whose events (BatchCreated, BatchFileWritten,
-- BatchCompleted, CertificateDelivered, DeliveryFailed) say what was selected, written and delivered.
-- These two tables only make the worker's questions cheap ("where did the last selection stop?",
-- "which batch is unfinished?"); each row is written in the SAME transaction as the batch event it
-- summarises (`EventStore::append_in`), so the table and the log cannot disagree.

-- Where the selection of "not yet exported" certificates stands in the log: the last event (in the
-- gap-safe tailing order of src/store/tail.rs) that a batch has already considered. Exactly one row.
-- The next run reads `read_after(this checkpoint)` and puts every CertificateApproved and
-- CertificateRevoked it finds into a new batch. The UPDATE that moves it is guarded by the old value
-- (`WHERE transaction_id = $old_xid AND position = $old_pos`), so two workers that somehow got past the
-- advisory lock cannot both put the same certificates into two batches: the second UPDATE matches no
-- row and its whole transaction (batch row and BatchCreated event included) rolls back.
CREATE TABLE export_selection (
    -- Always true: makes the table a singleton (a second row would violate the primary key).
    singleton       BOOLEAN     PRIMARY KEY DEFAULT true CHECK (singleton),
    -- The event's `xid8` as a bigint and its position; (0, 0) before the first event, as in
    -- projection_checkpoints.
    transaction_id  BIGINT      NOT NULL DEFAULT 0 CHECK (transaction_id >= 0),
    position        BIGINT      NOT NULL DEFAULT 0 CHECK (position >= 0),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO export_selection (singleton) VALUES (true);

-- One row per batch, inserted with its BatchCreated event and stamped `completed_at` with its
-- BatchCompleted event. A batch whose `completed_at` is NULL was interrupted (the worker died or lost
-- its lock between two files); the next run finishes it before selecting anything new.
CREATE TABLE export_batches (
    -- The batch id (UUID v7, so ids sort by creation time); the stream is 'export-batch-' || batch_id.
    batch_id        UUID        PRIMARY KEY,
    created_at      TIMESTAMPTZ NOT NULL,
    -- Counts as BatchCreated states them, for listings without reading the stream.
    certificates    INTEGER     NOT NULL CHECK (certificates >= 0),
    revocations     INTEGER     NOT NULL CHECK (revocations >= 0),
    -- NULL while files are still being written.
    completed_at    TIMESTAMPTZ,
    -- Set once every certificate of the batch has a CertificateDelivered event or a DeliveryFailed
    -- that no retry can fix (a Ladok rule error): the batch drops out of the worker's delivery query.
    -- NULL while Ladok delivery is switched off, so switching it on later delivers old batches too.
    deliveries_settled_at TIMESTAMPTZ
);
-- "Is there an unfinished batch?" is asked at the start of every run: a partial index keeps that an
-- index-only look at the (normally empty) set of unfinished batches.
CREATE INDEX export_batches_unfinished_idx ON export_batches (batch_id) WHERE completed_at IS NULL;
-- The delivery phase asks "which complete batches still have certificates to deliver?" every run.
CREATE INDEX export_batches_undelivered_idx ON export_batches (batch_id)
    WHERE completed_at IS NOT NULL AND deliveries_settled_at IS NULL;
