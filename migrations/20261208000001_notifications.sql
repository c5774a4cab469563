-- Notifications (src/notify/, docs/notifications.md): the messages the service decides from the
-- log and from its schedules, and what it needs to send each of them once.

-- One row per message: (source, recipient, kind) named by `dedup_key`, so deciding the same message
-- twice (a replay after a crash, a second instance, a schedule firing again) inserts nothing.
-- Nothing personal is stored here: the recipient is a portfolio id, a staff subject or a
-- functional mailbox's name, and `params` holds ids, dates and counts. The address and the text are
-- produced when the message is sent, from the log and the preferences, so an erasure reaches them.
CREATE TABLE outbox (
    id bigserial PRIMARY KEY,
    dedup_key text NOT NULL UNIQUE,
    -- e.g. `reflection_returned`, `coordinator_digest`, `batch_ready` (src/notify/kind.rs).
    kind text NOT NULL,
    -- `student` (recipient = portfolio id), `staff` (recipient = the staff member's subject),
    -- `registrar` or `operations` (recipient = '': the configured functional mailbox).
    recipient_kind text NOT NULL
        CHECK (recipient_kind IN ('student', 'staff', 'registrar', 'operations')),
    recipient text NOT NULL,
    params jsonb NOT NULL DEFAULT '{}',
    -- The log position the message was decided from (NULL for scheduled messages).
    source_position bigint,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- pending: waits for its next attempt; sent: accepted by the SMTP server; failed: given up
    -- after the last retry (shown in /metrics and GET /notifications/outbox); cancelled: its
    -- recipient was erased or has no address (`last_error` says which).
    state text NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'sent', 'failed', 'cancelled')),
    attempts integer NOT NULL DEFAULT 0,
    -- A sender claims a row by moving this past its lease, so a second instance leaves it alone
    -- while it is being sent, and takes it over if the sender dies.
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    -- The claim of the sender that holds the row: it confirms (and extends) its lease with it
    -- just before sending and records the outcome under it, so a sender whose lease ran out while
    -- the row waited in its batch neither sends it nor records anything.
    claim uuid,
    -- A code and a sentence without personal data (never the SMTP server's own text, which may
    -- quote the address).
    last_error text,
    sent_at timestamptz,
    -- The Message-ID every attempt of this message carries, so a receiver can drop the copy a
    -- crash between the SMTP server's "accepted" and our record of it makes us send again.
    message_id text NOT NULL
);

CREATE INDEX outbox_due_idx ON outbox (next_attempt_at) WHERE state = 'pending';
CREATE INDEX outbox_recipient_idx ON outbox (recipient_kind, recipient);

-- Where the outbox's consumer of the log stands; advanced in the transaction that inserts the
-- messages it decided (the projections' technique, src/projections/checkpoint.rs). A new
-- deployment starts at the head of the log: history is not announced to anyone.
CREATE TABLE outbox_checkpoint (
    name text PRIMARY KEY,
    transaction_id bigint NOT NULL,
    position bigint NOT NULL,
    events_read bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- A person's choices, keyed by their subject (a student's Ladok UID, a staff member's token
-- subject). Staff addresses come from here (their token's `email` claim, or what they set);
-- students' from their portfolio. Deleted with the rest of a student's data on erasure.
CREATE TABLE notification_preferences (
    subject text PRIMARY KEY,
    -- `sv` or `en`; NULL: the service's default language.
    language text CHECK (language IN ('sv', 'en')),
    digests boolean NOT NULL DEFAULT true,
    email text,
    -- true: the person set `email` themselves (PUT /me/notifications), and it stays; false: it
    -- is their token's `email` claim, and follows the claim when it changes.
    email_set_by_person boolean NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Scheduled jobs that must run once per period across instances (the digest, the reminders, the
-- health watch): the last period each one completed.
CREATE TABLE scheduled_runs (
    job text PRIMARY KEY,
    last_period text NOT NULL,
    finished_at timestamptz NOT NULL DEFAULT now()
);
