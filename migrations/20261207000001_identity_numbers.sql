-- One identity number belongs to one student UID across the whole service (issue 15, docs/identity.md,
-- src/store/identity.rs). A student UID claims the number of the portfolio it opens in the same
-- transaction as the `PortfolioOpened` event; a second student UID with the same number is refused.
--
-- The number itself is personal data and is not stored here: `number_hash` is HMAC-SHA256 of the
-- 12 normalised digits under a key kept in `subject_keys` (a reserved subject, wrapped by the master
-- key), so equal numbers collide on the primary key and a stolen copy of the database cannot be
-- searched for a number without the master key. An erasure deletes the student's rows.
CREATE TABLE identity_numbers (
    number_hash  BYTEA       PRIMARY KEY CHECK (octet_length(number_hash) = 32),
    -- The student (Ladok UID) the number belongs to.
    student_uid  UUID        NOT NULL,
    claimed_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Erasure finds a student's rows by their UID.
CREATE INDEX identity_numbers_student ON identity_numbers (student_uid);
