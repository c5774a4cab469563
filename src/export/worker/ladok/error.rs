//! What can go wrong talking to Ladok, sorted by what the worker does about it.

/// A failed Ladok call. Never carries Ladok's `Meddelande` (a message may quote personal data):
/// only status codes and Ladok's machine-readable `Felgrupp`/`Detaljkod`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LadokError {
    /// Ladok refused this one row by a rule (`Felgrupp`): recorded on the certificate; the batch goes on.
    #[error("Ladok refused the row: {felgrupp} ({detaljkod:?})")]
    Rule {
        felgrupp: String,
        detaljkod: Option<String>,
    },
    /// Ladok does not know the student.
    #[error("Ladok has no student with this Ladok UID")]
    StudentNotFound,
    /// The student record Ladok returned is not the portfolio's student (another Ladok UID, or
    /// another identity number): nothing is written, and it is never retried without a person.
    #[error("the student record in Ladok is not the portfolio's student")]
    IdentityMismatch,
    /// Ladok answered 404 to a request: a path that does not exist (see `cim ladok check`), or an
    /// entity that does not.
    #[error("Ladok has no such resource")]
    NotFound,
    /// A body we were about to send breaks Ladok's schema (a bug here, caught before sending).
    #[error("the request breaks Ladok's schema: {0}")]
    Schema(String),
    /// A revocation found no merit to withdraw.
    #[error("Ladok holds no merit for this certificate")]
    MeritNotFound,
    /// 401/403, or a 200 that is not JSON (an expired session's HTML login page).
    #[error("Ladok did not accept our client certificate or session")]
    Authentication,
    /// 5xx, a timeout or a connection error, after every retry.
    #[error("Ladok is unavailable: {0}")]
    Unavailable(String),
    /// Any other answer we cannot use.
    #[error("unexpected answer from Ladok: {0}")]
    Unexpected(String),
    /// The client could not be built (bad PKCS#12 file or passphrase, bad root certificate).
    #[error("the Ladok client cannot be configured: {0}")]
    Config(String),
}

impl LadokError {
    /// Our code for the failure, stored in DeliveryFailed.
    pub fn reason_code(&self) -> &'static str {
        match self {
            LadokError::Rule { .. } => "rule_error",
            LadokError::StudentNotFound => "student_not_found",
            LadokError::IdentityMismatch => "identity_mismatch",
            LadokError::NotFound => "not_found",
            LadokError::Schema(_) => "schema",
            LadokError::MeritNotFound => "merit_not_found",
            LadokError::Authentication => "authentication",
            LadokError::Unavailable(_) => "unavailable",
            LadokError::Unexpected(_) => "unexpected_response",
            LadokError::Config(_) => "configuration",
        }
    }

    /// Whether a later run may succeed without anyone changing anything in Ladok.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            LadokError::Authentication | LadokError::Unavailable(_) | LadokError::Config(_)
        )
    }

    /// Whether the failure concerns Ladok as a whole (not this row): the run stops delivering.
    pub fn stops_the_run(&self) -> bool {
        self.retryable()
    }

    pub fn felgrupp(&self) -> Option<&str> {
        match self {
            LadokError::Rule { felgrupp, .. } => Some(felgrupp),
            _ => None,
        }
    }
}
