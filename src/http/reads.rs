//! What the read routes share: who may read a program's or a portfolio's records, and the query
//! of a page.
//!
//! The same 401 → 403 → 404 order as the commands (`access`): the role and the program claim are
//! checked from the token and the path before anything is loaded; a portfolio the caller may not
//! know exists answers exactly like one that does not exist.

use super::access;
use super::auth::{Caller, Role};
pub use super::paths::{PortfolioPath, ProgramPath};
use super::problem::Problem;
use super::state::AppState;
use crate::domain::{PortfolioId, ProgramId};
use crate::projections::Scope;
use crate::projections::read_models::ReadError;
use serde::Deserialize;
use std::time::Duration;

/// How long a read waits for its read model to catch up before answering with what it has.
pub const CONSISTENCY_WAIT: Duration = Duration::from_secs(2);

/// `?cursor=&limit=` of a paged list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1-200 (default 50).
    pub limit: Option<i64>,
}

/// Step 2 for a program's records (queue, audit, portfolios): a coordinator of that program.
pub fn coordinator_of(caller: &Caller, program: ProgramId) -> Result<(), Problem> {
    if caller.coordinates(program) {
        Ok(())
    } else {
        Err(Problem::forbidden(
            "only a coordinator of this program can see this",
        ))
    }
}

/// Steps 2 and 3 for a portfolio's audit: a coordinator (403 otherwise) of the portfolio's
/// program (404 `portfolio_not_found` otherwise, like a portfolio that does not exist).
pub async fn audited_portfolio(
    state: &AppState,
    caller: &Caller,
    id: PortfolioId,
) -> Result<(), Problem> {
    if caller.role != Role::Coordinator {
        return Err(Problem::forbidden(
            "only a coordinator of the portfolio's program can audit it",
        ));
    }
    let (current, _) = state.commands.load_portfolio(id).await?;
    let portfolio = current.opened().ok_or_else(access::portfolio_not_found)?;
    access::may_see(caller, portfolio)
}

/// A read model query that failed: ours, logged, answered generically.
pub fn read_failed(e: ReadError) -> Problem {
    Problem::internal(&e)
}

/// Read-your-writes for the routes answered from a read model: waits (at most
/// [`CONSISTENCY_WAIT`]) until `projection` has applied the log as far as it was readable when the
/// request arrived, so a list read after a command's answer includes that command (unless another
/// transaction of the database was still open when the command committed). After the wait the
/// answer is given anyway, possibly stale, and the delay is logged. Without a runner in this
/// process (tests) nothing is awaited.
pub async fn caught_up(state: &AppState, projection: &'static str) -> Result<(), Problem> {
    let Some(runner) = &state.projections else {
        return Ok(());
    };
    let head = state
        .commands
        .store()
        .head()
        .await
        .map_err(|e| Problem::internal(&e))?;
    if let Err(timeout) = runner
        .wait_for(Scope::Named(projection), head, CONSISTENCY_WAIT)
        .await
    {
        tracing::warn!(%timeout, "answering from a read model that has not caught up");
    }
    Ok(())
}
