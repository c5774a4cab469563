//! The path parameters of the routes, declared once: axum reads them (`ApiPath<…>`) and the OpenAPI
//! document describes them (`params(…)`) from the same struct. The traits say which portfolio or
//! program a path names, for the command skeleton (`pipeline`).

use crate::domain::{ActivityId, PortfolioId, ProgramId};
use serde::Deserialize;
use utoipa::IntoParams;

/// `/programs/{program_id}/…`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ProgramPath {
    /// The program.
    pub program_id: ProgramId,
}

/// `/programs/{program_id}/catalog/{item}/…`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ItemPath {
    /// The program.
    pub program_id: ProgramId,
    /// The catalog item's key, e.g. `language-cafe`.
    pub item: String,
}

/// `/portfolios/{portfolio_id}/…`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct PortfolioPath {
    /// The portfolio.
    pub portfolio_id: PortfolioId,
}

/// `/portfolios/{portfolio_id}/activities/{activity_id}/…`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ActivityPath {
    /// The portfolio.
    pub portfolio_id: PortfolioId,
    /// The activity.
    pub activity_id: ActivityId,
}

/// A path under a portfolio: the portfolio a command runs on (`pipeline::CommandRequest`).
pub trait OnPortfolio {
    fn portfolio_id(&self) -> PortfolioId;
}

impl OnPortfolio for PortfolioPath {
    fn portfolio_id(&self) -> PortfolioId {
        self.portfolio_id
    }
}

impl OnPortfolio for ActivityPath {
    fn portfolio_id(&self) -> PortfolioId {
        self.portfolio_id
    }
}

/// A path under a program: the program a command runs on.
pub trait OnProgram {
    fn program_id(&self) -> ProgramId;
}

impl OnProgram for ProgramPath {
    fn program_id(&self) -> ProgramId {
        self.program_id
    }
}

impl OnProgram for ItemPath {
    fn program_id(&self) -> ProgramId {
        self.program_id
    }
}
