-- Read model `registrar` (src/projections/read_models/registrar.rs): the registrar's office's list of
-- certificates, across every program: approved ones, and revoked ones (a revocation must reach the
-- registrar and Ladok as a correction).
--
-- One row per certificate, inserted by CertificateApproved and updated by CertificateRevoked. The
-- holder's identity number and name (CertificateApproved.personal) are NOT copied: the export worker
-- reads them from `events`, where archiving rules decide how long they are kept. The revocation reason
-- is personal too and is left out. `student_uid` (Ladok's own key) is what the registrar matches on.

CREATE TABLE rm_certificates (
    certificate_id     UUID        PRIMARY KEY,
    portfolio_id       UUID        NOT NULL,
    program_id         UUID        NOT NULL,
    -- The program's code and name at the decision, as the certificate states them.
    program_code       TEXT        NOT NULL,
    program_name       TEXT        NOT NULL,
    student_uid        UUID        NOT NULL,
    -- Which application of the portfolio was approved (1 unless earlier ones were rejected).
    application        INTEGER     NOT NULL,
    -- The Stockholm date of the decision (what the Diploma Supplement and Ladok record) and the
    -- coordinator who made it.
    decided_on         DATE        NOT NULL,
    decided_by         TEXT        NOT NULL,
    -- The certified activities' catalog names, in the certificate's order, for lists and search ...
    activity_names     TEXT[]      NOT NULL,
    -- ... and the full certified activities (item, name as logged, dates, reflection format) as the
    -- certificate states them: CertifiedActivity as JSON.
    activities         JSONB       NOT NULL,
    final_format       TEXT        NOT NULL,
    status             TEXT        NOT NULL CHECK (status IN ('approved', 'revoked')),
    revoked_on         DATE,
    revoked_by         TEXT,
    -- Where the CertificateApproved event sits in the log's global order (transaction id, position):
    -- the keyset cursor of the registrar's list (certificates in the order they came into existence).
    -- The global order, not the position alone, so that a certificate the projection applies later
    -- can never sort before a page already read (see src/store/tail.rs).
    approved_transaction_id  BIGINT NOT NULL,
    approved_position  BIGINT      NOT NULL UNIQUE,
    -- recorded_at of the approving event, and of the last event that changed the row (never now()).
    approved_at        TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL,
    -- Delivery state, from the export worker's batch streams (`export-batch-{id}`):
    --   * BatchCreated sets `export_status` 'pending' -> 'exported' and `last_batch_id` for every
    --     certificate (only while still 'approved') and revocation (a correction) it took, with
    --     `ladok_status` 'pending' and `delivery_error` cleared; an approval it refused gets
    --     'refused' and the refusal code (e.g. `holder_erased`) in `delivery_error`;
    --   * CertificateDelivered sets `ladok_status` 'delivered' and clears `delivery_error`;
    --   * DeliveryFailed sets `ladok_status` 'retrying' (retryable: the next run tries again) or
    --     'failed' (a rule error: waits for the registrar) and `delivery_error` to our reason code,
    --     with Ladok's error group after a ':' when Ladok named one
    --     (`rule_error:commons.fel.grupp.domanregel`); never Ladok's free text;
    --   * DeliveriesDeferred (Ladok as a whole failed earlier in the run, which stopped delivering)
    --     sets the named undelivered rows to 'retrying' with the failure's code (`unavailable`,
    --     `authentication`) in `delivery_error`, as if each had been tried and failed;
    --   * RedeliveryRequested (the registrar asked for failed rows to be delivered again) sets the
    --     named undelivered rows' `ladok_status` back to 'pending', keeping the last error;
    --   * an outcome only applies while the row is 'exported' in that same batch (`last_batch_id`),
    --     so a late outcome of an older batch cannot hide a pending revocation.
    -- CertificateRevoked sets both back to 'pending': the revocation itself must now be delivered as
    -- a correction in a later batch (batches are immutable), and 'pending' means "the registrar and
    -- Ladok do not have the certificate's current status yet".
    export_status      TEXT        NOT NULL DEFAULT 'pending',
    ladok_status       TEXT        NOT NULL DEFAULT 'pending',
    last_batch_id      UUID,
    delivery_error     TEXT,
    -- While Ladok has not got the certificate after runs that failed to deliver it (a DeliveryFailed,
    -- or a DeliveriesDeferred): when the first of those runs recorded it ("unavailable since", by the
    -- event's recorded_at) and how many runs did. Both are cleared (NULL, 0) by CertificateDelivered,
    -- by a batch taking the certificate (BatchCreated), by CertificateRevoked and by
    -- RedeliveryRequested, so they always describe the current wait.
    ladok_waiting_since TIMESTAMPTZ,
    delivery_attempts  INTEGER     NOT NULL DEFAULT 0
);

-- The registrar's list in approval order (keyset), all programs or one program (and status).
CREATE INDEX rm_certificates_list_idx ON rm_certificates (approved_transaction_id, approved_position);
CREATE INDEX rm_certificates_program_idx
    ON rm_certificates (program_id, status, approved_transaction_id, approved_position);

-- The export worker's work list: certificates whose current status has not reached the registrar or
-- Ladok yet.
CREATE INDEX rm_certificates_undelivered_idx
    ON rm_certificates (approved_transaction_id, approved_position)
    WHERE export_status = 'pending' OR ladok_status = 'pending';

-- Looking a student's certificates up by Ladok UID (registrar questions, corrections).
CREATE INDEX rm_certificates_student_idx ON rm_certificates (student_uid);
