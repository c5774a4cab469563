-- Media uploads (src/media/, src/http/routes/media.rs): which portfolio an uploaded file belongs to.
--
-- The bytes are not in the database. They live in the content-addressed media store
-- (CIM_MEDIA_DIR, one file per distinct SHA-256 at <dir>/<first two hex>/<sha256>). This table only
-- remembers what the server itself established when the file arrived (the sniffed type, the size and
-- the measured duration), so that a later command can reference the upload by its hash and the
-- server, not the client, supplies those facts to the event.
--
-- Why a table and not an event: an upload is not a decision about the portfolio; nothing in the
-- domain depends on a file having been uploaded until a command references it, and that command's
-- event (ReflectionSubmitted, ActivityLogged, ...) records the hash, type, size and the measured
-- duration with `duration_measured`. The event log stays the record; this table is a lookup that can
-- be rebuilt from the store by re-measuring the files, and its rows are deleted with the blob on
-- erasure (GDPR) without touching the log.
CREATE TABLE media_uploads (
    -- Lower-case hex SHA-256 of the content (the file name in the store).
    sha256        TEXT        NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    -- The portfolio the upload was made to. The same content uploaded to two portfolios is stored
    -- once but has two rows: access is decided per portfolio, never by knowing a hash.
    portfolio_id  UUID        NOT NULL,
    -- The type detected from the bytes (never the client's Content-Type), e.g. audio/wav.
    content_type  TEXT        NOT NULL,
    size_bytes    BIGINT      NOT NULL CHECK (size_bytes > 0),
    -- The duration the server measured from the container, in milliseconds; NULL when the container
    -- could not be parsed or the file is not audio/video (the student's declared duration is then
    -- used and flagged as not measured).
    duration_ms   BIGINT      CHECK (duration_ms IS NULL OR duration_ms >= 0),
    -- The `sub` of the student who uploaded it.
    uploaded_by   TEXT        NOT NULL,
    -- The first upload; uploading the same content again to the same portfolio keeps this row.
    uploaded_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (portfolio_id, sha256)
);

-- Erasure and garbage collection look up every portfolio that references a blob.
CREATE INDEX media_uploads_sha256 ON media_uploads (sha256);
