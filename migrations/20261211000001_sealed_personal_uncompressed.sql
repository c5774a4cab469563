-- `events.personal` holds sealed envelopes (src/store/keys.rs): ciphertext in base64, which does not
-- compress. PostgreSQL's default storage for the column tries anyway (pglz over the whole value before
-- giving up), about a third of the server's time in a profile of appends at 32 writers. EXTERNAL keeps
-- the value out of line when the row is large, as before, without the attempt. Old rows stay as they are.
ALTER TABLE events ALTER COLUMN personal SET STORAGE EXTERNAL;
