-- The event log: the only source of truth. Every read model (projections/) and every export batch is
-- derived from this table and can be thrown away and rebuilt from it.
--
-- Guarantees this schema carries (see README "Event store"):
--   * optimistic concurrency: UNIQUE (stream_id, version); a lost race fails with SQLSTATE 23505 on the
--     constraint `events_stream_version_key`, which the store maps to a typed conflict error;
--   * a global order that a tailing consumer can follow without skipping: (transaction_id, position),
--     read only below the oldest transaction still running (see src/store/tail.rs for why);
--   * personal data kept apart from the rest of the event, so it can be erased without rewriting history.

CREATE TABLE events (
    -- Global position. Drawn from a sequence at INSERT time, so positions are unique and increase within
    -- one transaction, but transactions may COMMIT in a different order than they drew positions. That is
    -- why consumers never tail on `position` alone.
    position        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The id of the appending transaction. Every event of one append shares it. Consumers read only events
    -- whose transaction_id is below the xmin of their snapshot: all such transactions have ended, so the
    -- set of visible events below that bound can never grow again.
    transaction_id  XID8        NOT NULL DEFAULT pg_current_xact_id(),
    -- "portfolio-<uuid>", "program-<uuid>", "batch-<uuid>": the aggregate instance this event belongs to.
    stream_id       TEXT        NOT NULL,
    -- 1-based version within the stream; an append states the version it expects to follow.
    version         INTEGER     NOT NULL CHECK (version > 0),
    event_id        UUID        NOT NULL UNIQUE,
    -- Stable type name (e.g. "ReflectionSubmitted") and the version of that type's JSON shape. Older shapes
    -- are upcast in src/store/upcast.rs when read, so old logs stay readable forever.
    event_type      TEXT        NOT NULL,
    schema_version  SMALLINT    NOT NULL CHECK (schema_version > 0),
    -- The event without its personal data.
    payload         JSONB       NOT NULL,
    -- The event's personal data (identity number, names, texts, media references), or NULL when it has
    -- none. Kept in its own column so that erasure touches only this and never the facts around it.
    personal        JSONB,
    -- Whose personal data `personal` is (the portfolio's student), so it can be found for erasure.
    data_subject    UUID,
    -- Metadata every event carries.
    actor_id        TEXT        NOT NULL,
    actor_role      TEXT        NOT NULL,
    correlation_id  UUID        NOT NULL,
    causation_id    UUID,
    command_id      UUID        NOT NULL,
    recorded_at     TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, version)
);

-- The tailing order. Consumers ask for "everything after (xid, position) and below the snapshot's xmin",
-- which this index answers with a range scan.
CREATE INDEX events_tail_idx ON events (transaction_id, position);

-- Erasure and audit look events up by person and by time.
CREATE INDEX events_data_subject_idx ON events (data_subject) WHERE data_subject IS NOT NULL;
CREATE INDEX events_recorded_at_idx ON events (recorded_at);

-- Idempotency: one row per command that produced events, written by the same statement as the events.
-- A retry of the same command collides with the first attempt on a unique key: on this primary key, or
-- (when both decided against the same version) on events_stream_version_key, waiting for the first
-- attempt to commit or roll back. Either way the store then reads this row and returns the first outcome.
CREATE TABLE commands (
    command_id      UUID        PRIMARY KEY,
    stream_id       TEXT        NOT NULL,
    -- The outcome returned to a retry: which versions and positions the command produced.
    first_version   INTEGER     NOT NULL,
    last_version    INTEGER     NOT NULL,
    first_position  BIGINT      NOT NULL,
    last_position   BIGINT      NOT NULL,
    transaction_id  XID8        NOT NULL,
    recorded_at     TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);

-- Appends announce themselves on this channel (payload: nothing personal, just the position). Consumers
-- treat it as a hint to poll now; they also poll on a timer because notifications can be lost.
CREATE FUNCTION notify_event_appended() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('cim_events', '');
    RETURN NULL;
END;
$$;

-- One notification per appending statement, not per row: a batch append wakes consumers once.
CREATE TRIGGER events_notify AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION notify_event_appended();
