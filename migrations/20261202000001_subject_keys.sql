-- Crypto-shredding (src/crypto/, src/store/keys.rs): the personal part of every event is sealed
-- (XChaCha20-Poly1305) with a key of its data subject, and that key lives here, wrapped by the master
-- key, which lives outside the database. Erasing a person deletes their key: the ciphertext left in
-- `events.personal` can then never be opened again, and the log itself is never rewritten.
--
-- A row is never deleted. An erased key stays as a tombstone (`wrapped_key` NULL, `erased_at` set), so
-- that "this person was erased" (the personal data reads as erased) can be told apart from "this key
-- was lost" (a start-up error: sealed events whose subject has no row at all).
CREATE TABLE subject_keys (
    -- The data subject (`events.data_subject`: the student's Ladok UID).
    data_subject   UUID        PRIMARY KEY,
    -- Counts the keys this person has had. Personal data arriving after an erasure gets a new key of
    -- the next generation; envelopes name the generation they were sealed with, and an envelope of an
    -- older generation reads as erased.
    generation     INTEGER     NOT NULL DEFAULT 1 CHECK (generation > 0),
    -- nonce || XChaCha20-Poly1305(master key, subject key), bound to data_subject. NULL once erased.
    wrapped_key    BYTEA,
    -- The fingerprint of the master key that wrapped it (`MasterKey::id`, never the key), so a
    -- process started with another master key is stopped at start-up with a clear message.
    master_key_id  TEXT,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- The last erasure (who and why are in the erasure events of the person's portfolios).
    erased_at      TIMESTAMPTZ,
    CHECK ((wrapped_key IS NULL) = (master_key_id IS NULL)),
    CHECK (wrapped_key IS NOT NULL OR erased_at IS NOT NULL)
);
