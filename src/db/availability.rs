//! Telling "the database is away" from every other database failure.
//!
//! A request that fails because PostgreSQL is restarting, stopped or out of connections is not a bug
//! of ours and not the client's fault: it should be retried shortly, so the API answers 503 with
//! `Retry-After` instead of 500. Told apart by error kind and SQLSTATE, never by message text.

/// Whether `error` means the database cannot be reached right now (as opposed to refusing a
/// statement).
pub fn unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // Class 08: connection exception. 57P01-57P03: the server is shutting down, crashed or
            // is still starting. 53300: too many connections.
            code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03" | "53300")
        }),
        _ => false,
    }
}

/// The first `sqlx::Error` in `error`'s chain that says the database is away, if any.
pub fn unavailable_in(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if e.downcast_ref::<sqlx::Error>().is_some_and(unavailable) {
            return true;
        }
        current = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_failures_are_unavailable_and_refusals_are_not() {
        assert!(unavailable(&sqlx::Error::PoolTimedOut));
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(unavailable(&sqlx::Error::Io(refused)));
        assert!(!unavailable(&sqlx::Error::RowNotFound));
        let wrapped = crate::store::StoreError::Database(sqlx::Error::PoolTimedOut);
        assert!(unavailable_in(&wrapped));
        let other = crate::store::StoreError::Database(sqlx::Error::RowNotFound);
        assert!(!unavailable_in(&other));
    }
}
