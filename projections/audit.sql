-- Read model `audit` (src/projections/read_models/audit.rs): an index over the event log for the
-- coordinator's audit (a portfolio's full history, a program-wide log filtered by time, actor and event
-- type, CSV exports).
--
-- Only metadata is indexed here. The content of an event (payload + personal data) is joined from
-- `events` at query time, so:
--   * nothing personal is copied: erasing `events.personal` is all an erasure has to do, and the audit
--     then shows the event without its personal part;
--   * the index stays small (one narrow row per event) however large reflections are.

-- Which program a stream belongs to. Portfolio events do not repeat their program, so the opening event
-- (PortfolioOpened, always version 1) records it here for the events that follow.
CREATE TABLE rm_audit_streams (
    stream_id   TEXT PRIMARY KEY,
    program_id  UUID NOT NULL
);

CREATE TABLE rm_audit (
    -- The event's global position (events.position): the join key to the content.
    position        BIGINT      PRIMARY KEY,
    -- The appending transaction's id (events.transaction_id as bigint): events of one command share
    -- it. (transaction_id, position) is the log's global order, in which the projection applies
    -- events; the program log pages on it, so an event applied later can never appear *before* a
    -- page a reader has already seen (which paging on `position` alone would allow, see
    -- src/store/tail.rs).
    transaction_id  BIGINT      NOT NULL,
    stream_id       TEXT        NOT NULL,
    stream_version  INTEGER     NOT NULL,
    -- Set for portfolio streams.
    portfolio_id    UUID,
    -- The program the event concerns: a program stream's own id, or the program a portfolio was opened
    -- in. NULL for streams of no program (export batches).
    program_id      UUID,
    event_type      TEXT        NOT NULL,
    -- Who caused it, in which role (student UID, staff id, system job), and when.
    actor_id        TEXT        NOT NULL,
    actor_role      TEXT        NOT NULL,
    recorded_at     TIMESTAMPTZ NOT NULL,
    -- The request that led to it: ties the event to the service's log lines.
    correlation_id  UUID        NOT NULL,
    causation_id    UUID
);

-- A portfolio's history, in stream order.
CREATE INDEX rm_audit_portfolio_idx ON rm_audit (portfolio_id, stream_version)
    WHERE portfolio_id IS NOT NULL;

-- The program log, paged in the global order (keyset on (transaction_id, position)). Filters on time
-- and type are applied on this range scan; the two indexes below serve the selective ones.
CREATE INDEX rm_audit_program_idx ON rm_audit (program_id, transaction_id, position);

-- "What did this person do in this program": actor filter, same order.
CREATE INDEX rm_audit_program_actor_idx ON rm_audit (program_id, actor_id, transaction_id, position);

-- Time-range filters ("last week's events of this program").
CREATE INDEX rm_audit_program_time_idx ON rm_audit (program_id, recorded_at);
