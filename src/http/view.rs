//! What the API answers about a program and a portfolio, built from the state the command handler
//! folds from the log.
//!
//! Answering from the folded stream (rather than waiting for a read model to catch up) makes every
//! command answer read-your-writes by construction, and its `version` is exactly the stream version
//! the ETag names. The portfolio's shape is the read model's own (`read_models::view`), built by the
//! same pure function, so the API, the stored read model and the audit's time travel agree.

use crate::domain::portfolio::Portfolio;
use crate::domain::program::Program;
use crate::domain::rules::ProgramRules;
use crate::domain::{CatalogItemId, ProgramCode, ProgramId, StaffId};
use crate::projections::read_models::view as rm;
use chrono::NaiveDate;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct ProgramView {
    pub id: ProgramId,
    pub name: String,
    pub code: ProgramCode,
    pub catalog: Vec<CatalogItemView>,
    /// The rules in force (word bands, durations, deadline offset, repeats).
    pub rules: ProgramRules,
    pub rules_version: u32,
    pub coordinators: Vec<StaffId>,
    pub version: i32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CatalogItemView {
    pub item: CatalogItemId,
    pub name: String,
    pub retired: bool,
}

impl ProgramView {
    pub fn new(program: &Program, version: i32) -> Self {
        Self {
            id: program.id,
            name: program.name.as_str().to_owned(),
            code: program.code.clone(),
            catalog: program
                .catalog
                .iter()
                .map(|i| CatalogItemView {
                    item: i.id.clone(),
                    name: i.name.as_str().to_owned(),
                    retired: i.retired,
                })
                .collect(),
            rules: program.rules.clone(),
            rules_version: program.rules_version,
            coordinators: program.coordinators.clone(),
            version,
        }
    }
}

/// A portfolio as its student and their program's coordinators see it: the same non-personal view
/// the `portfolio` read model stores and the audit's time travel shows (built by the same pure
/// function), with the personal content beside it. Every attempt and every piece of feedback is
/// there, never only the latest.
#[derive(Debug, Serialize, ToSchema)]
pub struct PortfolioView {
    /// `projections::read_models::view::PortfolioView`: activities, attempts, measurements,
    /// reviews, deadline, requirements, phase, certificate and the student's next steps.
    pub view: rm::PortfolioView,
    /// The personal content: who the student is, descriptions, reflection texts, feedback and
    /// reasons (empty once erased).
    pub personal: rm::PortfolioPersonal,
    /// Days left until the final reflection's deadline (Europe/Stockholm), while it binds.
    pub days_left: Option<i64>,
    /// The stream version, also sent as the ETag.
    pub version: i32,
}

impl PortfolioView {
    pub fn new(p: &Portfolio, rules: &ProgramRules, version: i32, today: NaiveDate) -> Self {
        let view = rm::PortfolioView::build(p, rules);
        Self {
            days_left: view.days_left(today),
            view,
            personal: rm::PortfolioPersonal::build(p),
            version,
        }
    }
}
