-- Idempotency keys bound to the request they were first sent with (src/http/command.rs), as the IETF
-- Idempotency-Key draft asks: a retry with the same key and the same body is answered with the first
-- outcome (the `commands` table does that), the same key with a different body is refused with 422
-- `idempotency_key_reused` instead of silently getting the first request's answer.
--
-- A key is bound when a command's body is first read by a caller allowed to send it, whether or not
-- the command then takes effect: a client that changes its request must use a new key.
CREATE TABLE idempotency_keys (
    -- The command id derived from (key, caller, method, path): the same id `commands` and
    -- `events.command_id` use, so the key itself is never stored.
    command_id      UUID        PRIMARY KEY,
    -- SHA-256 of (command id || SHA-256 of the body). Salted with the command id so that equal
    -- bodies under different keys store different values and nothing of a body (which may hold
    -- personal data) can be confirmed from this table without the client's key.
    request_sha256  BYTEA       NOT NULL CHECK (octet_length(request_sha256) = 32),
    first_seen_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
