//! Every route of the router with what each kind of caller must get from it: the authorisation
//! table that `tests/it/authorisation/` proves call by call, and that `tests/it/api/` uses to know which
//! routes take a JSON body.

/// What a caller must get from a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum E {
    /// Allowed: exactly this 2xx status, with real resources in every path parameter.
    Allowed(u16),
    /// 401 with a `token_*` code.
    Unauth,
    /// 403 `forbidden` (or the route's own 403 code).
    Forbidden,
    /// 404 `portfolio_not_found`: the object is hidden from this caller.
    Hidden,
}
pub use E::{Allowed as A, Forbidden as F, Hidden as H, Unauth as U};

/// Who calls, in the order of [`TABLE`]'s columns: the student the object belongs to, another
/// student (with a portfolio in the other program), a coordinator of the object's program, a
/// coordinator of the other program, the registrar, an admin, and no token at all.
pub const CALLERS: [&str; 7] = [
    "student-own",
    "student-other",
    "coordinator-own",
    "coordinator-other",
    "registrar",
    "admin",
    "anonymous",
];

/// Every route with the expected outcome per caller (columns as [`CALLERS`]). The third column says
/// whether the route takes a JSON body.
#[rustfmt::skip]
pub const TABLE: &[(&str, &str, bool, [E; 7])] = &[
    ("GET", "/healthz", false, [A(200), A(200), A(200), A(200), A(200), A(200), A(200)]),
    ("GET", "/readyz", false, [A(200), A(200), A(200), A(200), A(200), A(200), A(200)]),
    ("GET", "/openapi.json", false, [A(200), A(200), A(200), A(200), A(200), A(200), A(200)]),
    ("GET", "/metrics", false, [A(200), A(200), A(200), A(200), A(200), A(200), A(200)]),
    ("POST", "/programs", true, [F, F, F, F, F, A(201), U]),
    ("GET", "/programs/{program_id}", false, [A(200), A(200), A(200), A(200), A(200), A(200), U]),
    ("POST", "/programs/{program_id}/coordinators", true, [F, F, F, F, F, A(200), U]),
    ("POST", "/programs/{program_id}/coordinators/unassign", true, [F, F, F, F, F, A(200), U]),
    ("POST", "/programs/{program_id}/catalog", true, [F, F, A(200), F, F, F, U]),
    ("POST", "/programs/{program_id}/catalog/{item}/rename", true, [F, F, A(200), F, F, F, U]),
    ("POST", "/programs/{program_id}/catalog/{item}/retire", false, [F, F, A(200), F, F, F, U]),
    ("POST", "/programs/{program_id}/rules", true, [F, F, A(200), F, F, F, U]),
    ("POST", "/programs/{program_id}/portfolios", true, [A(201), A(201), F, F, F, F, U]),
    ("GET", "/portfolios/{portfolio_id}", false, [A(200), H, A(200), H, F, F, U]),
    // A coordinator sets the date; the student only proposes one (403 with a code of its own).
    ("POST", "/portfolios/{portfolio_id}/expected-completion", true, [F, F, A(200), H, F, F, U]),
    ("POST", "/portfolios/{portfolio_id}/expected-completion/confirm", false, [F, F, A(200), H, F, F, U]),
    ("POST", "/portfolios/{portfolio_id}/expected-completion/proposal", true, [A(200), H, F, F, F, F, U]),
    ("POST", "/portfolios/{portfolio_id}/expected-completion/proposal/accept", true, [F, F, A(200), H, F, F, U]),
    ("POST", "/portfolios/{portfolio_id}/expected-completion/proposal/decline", true, [F, F, A(200), H, F, F, U]),
    ("POST", "/portfolios/{portfolio_id}/activities", true, [A(200), H, F, F, F, F, U]),
    ("POST", "/portfolios/{portfolio_id}/activities/{activity_id}/withdraw", false, [A(200), H, F, F, F, F, U]),
    ("POST", "/portfolios/{portfolio_id}/activities/{activity_id}/reflection", true, [A(200), H, F, F, F, F, U]),
    ("POST", "/portfolios/{portfolio_id}/activities/{activity_id}/reflection/resubmit", true, [A(200), H, F, F, F, F, U]),
    ("POST", "/portfolios/{portfolio_id}/activities/{activity_id}/reflection/approve", false, [F, F, A(200), H, F, F, U]),
    ("POST", "/portfolios/{portfolio_id}/activities/{activity_id}/reflection/return", true, [F, F, A(200), H, F, F, U]),
    ("POST", "/portfolios/{portfolio_id}/final-reflection", true, [A(200), H, F, F, F, F, U]),
    ("POST", "/portfolios/{portfolio_id}/final-reflection/resubmit", true, [A(200), H, F, F, F, F, U]),
    ("POST", "/portfolios/{portfolio_id}/final-reflection/approve", false, [F, F, A(200), H, F, F, U]),
    ("POST", "/portfolios/{portfolio_id}/final-reflection/return", true, [F, F, A(200), H, F, F, U]),
    ("POST", "/portfolios/{portfolio_id}/extensions", true, [F, F, A(200), H, F, F, U]),
    ("POST", "/portfolios/{portfolio_id}/application", false, [A(200), H, F, F, F, F, U]),
    ("POST", "/portfolios/{portfolio_id}/application/approve", false, [F, F, A(200), H, F, F, U]),
    ("POST", "/portfolios/{portfolio_id}/application/reject", true, [F, F, A(200), H, F, F, U]),
    ("POST", "/portfolios/{portfolio_id}/revocation", true, [F, F, A(200), H, F, F, U]),
    // Raw-body upload (not JSON) and download of media.
    ("POST", "/portfolios/{portfolio_id}/media", false, [A(201), H, F, F, F, F, U]),
    ("GET", "/portfolios/{portfolio_id}/media/{sha256}", false, [A(200), H, A(200), H, F, F, U]),
    // Reads (tests/it/api_reads/ checks what they answer).
    ("GET", "/me/portfolios", false, [A(200), A(200), F, F, F, F, U]),
    ("GET", "/programs/{program_id}/portfolios", false, [F, F, A(200), F, F, F, U]),
    ("GET", "/programs/{program_id}/review-queue", false, [F, F, A(200), F, F, F, U]),
    ("GET", "/portfolios/{portfolio_id}/history", false, [F, F, A(200), H, F, F, U]),
    ("GET", "/portfolios/{portfolio_id}/history.csv", false, [F, F, A(200), H, F, F, U]),
    ("GET", "/portfolios/{portfolio_id}/as-of", false, [F, F, A(200), H, F, F, U]),
    ("GET", "/programs/{program_id}/audit", false, [F, F, A(200), F, F, F, U]),
    ("GET", "/programs/{program_id}/audit.csv", false, [F, F, A(200), F, F, F, U]),
    ("GET", "/statistics", false, [F, F, A(200), A(200), F, A(200), U]),
    ("GET", "/programs/{program_id}/statistics", false, [F, F, A(200), F, F, A(200), U]),
    ("GET", "/certificates", false, [F, F, F, F, A(200), F, U]),
    ("GET", "/certificates/{certificate_id}", false, [F, F, F, F, A(200), F, U]),
    // The registrar's export batches (tests/it/registrar_api.rs checks what they answer).
    ("GET", "/exports/batches", false, [F, F, F, F, A(200), F, U]),
    ("GET", "/exports/batches/{batch_id}", false, [F, F, F, F, A(200), F, U]),
    ("GET", "/exports/batches/{batch_id}/files/{name}", false, [F, F, F, F, A(200), F, U]),
    ("POST", "/exports/batches/{batch_id}/acknowledge", false, [F, F, F, F, A(200), F, U]),
    ("POST", "/exports/batches/{batch_id}/redeliver", false, [F, F, F, F, A(200), F, U]),
    ("POST", "/exports/run", false, [F, F, F, F, A(200), F, U]),
    // Erasure (tests/it/erasure.rs checks what it does).
    ("POST", "/students/{student_uid}/erasure", true, [F, F, F, F, F, A(200), U]),
    // Credentials (tests/it/credentials.rs checks what they do): the student's download; what a
    // verifier reads, public; the registrar's view of the issue.
    ("GET", "/portfolios/{portfolio_id}/credential", false, [A(200), H, F, F, F, F, U]),
    ("GET", "/portfolios/{portfolio_id}/certificate.pdf", false, [A(200), H, F, F, F, F, U]),
    ("GET", "/issuer", false, [A(200), A(200), A(200), A(200), A(200), A(200), A(200)]),
    ("GET", "/issuer/keys", false, [A(200), A(200), A(200), A(200), A(200), A(200), A(200)]),
    ("GET", "/credentials/status/{list}", false, [A(200), A(200), A(200), A(200), A(200), A(200), A(200)]),
    ("GET", "/credentials/{credential_id}", false, [A(200), A(200), A(200), A(200), A(200), A(200), A(200)]),
    ("POST", "/verify", true, [A(200), A(200), A(200), A(200), A(200), A(200), A(200)]),
    ("GET", "/certificates/{certificate_id}/credential", false, [F, F, F, F, A(200), A(200), U]),
    // Notifications (tests/it/notifications/ checks what they do).
    ("GET", "/me/notifications", false, [A(200), A(200), A(200), A(200), A(200), A(200), U]),
    ("PUT", "/me/notifications", true, [A(200), A(200), A(200), A(200), A(200), A(200), U]),
    ("GET", "/notifications/outbox", false, [F, F, F, F, F, A(200), U]),
    ("POST", "/notifications/outbox/{id}/retry", false, [F, F, F, F, F, A(202), U]),
];
