//! The soak's staff: a coordinator per program working through the review queue, and the registrar
//! exporting.

use super::Traffic;
use cim::http::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

impl Traffic {
    /// A coordinator: reads the program's review queue, looks at each waiting portfolio and approves
    /// what waits. Entries already handled are remembered, since the queue (a read model) may show
    /// them for a moment after the approval.
    pub(super) async fn coordinator(self: Arc<Self>, k: usize) {
        let program = self.programs[k];
        // No program groups: the program's stream, which assigns this coordinator, decides.
        let Some(token) = self.token(Role::Coordinator, self.coordinators[k].as_str(), Vec::new())
        else {
            return;
        };
        let queue = format!("/programs/{program}/review-queue?limit=100");
        let mut handled: HashSet<i64> = HashSet::new();
        while !self.stopping() {
            let Some(page) = self
                .get(
                    "/programs/{id}/review-queue",
                    &queue,
                    Some(&token),
                    StatusCode::OK,
                )
                .await
            else {
                self.pause(Duration::from_millis(500)).await;
                continue;
            };
            let mut acted = false;
            for entry in page["items"].as_array().into_iter().flatten() {
                let Some(position) = entry["position"].as_i64() else {
                    continue;
                };
                if self.stopping() || !handled.insert(position) {
                    continue;
                }
                acted = true;
                self.review(entry, &token).await;
            }
            if !acted {
                self.pause(Duration::from_millis(300)).await;
            }
        }
    }

    /// Looks at the portfolio, then approves (or confirms) the queue entry.
    async fn review(&self, entry: &Value, token: &str) -> Option<()> {
        let portfolio = format!("/portfolios/{}", entry["portfolio_id"].as_str()?);
        self.read(&portfolio, token).await?;
        let (route, path) = match entry["kind"].as_str()? {
            "reflection" => (
                "/portfolios/{id}/activities/{id}/reflection/approve",
                format!(
                    "{portfolio}/activities/{}/reflection/approve",
                    entry["activity_id"].as_str()?
                ),
            ),
            "final_reflection" => (
                "/portfolios/{id}/final-reflection/approve",
                format!("{portfolio}/final-reflection/approve"),
            ),
            // The date the student gave at enrolment: confirmed as it is.
            "completion_confirmation" => (
                "/portfolios/{id}/expected-completion/confirm",
                format!("{portfolio}/expected-completion/confirm"),
            ),
            _ => (
                "/portfolios/{id}/application/approve",
                format!("{portfolio}/application/approve"),
            ),
        };
        self.post(route, &path, token, "{}").await?;
        self.counters.reviews.fetch_add(1, Ordering::Relaxed);
        if entry["kind"] == "application" {
            self.counters.certificates.fetch_add(1, Ordering::Relaxed);
        }
        Some(())
    }

    /// The registrar: an export run every `every`, then a look at the certificates and batches.
    pub(super) async fn registrar(self: Arc<Self>, every: Duration) {
        let Some(token) = self.token(Role::Registrar, "registrar-soak", Vec::new()) else {
            return;
        };
        loop {
            self.pause(every).await;
            if self.stopping() {
                return;
            }
            let run = self
                .call(
                    Method::POST,
                    "/exports/run",
                    "/exports/run",
                    Some(&token),
                    None,
                    StatusCode::OK,
                )
                .await;
            if run.is_some() {
                self.counters.export_runs.fetch_add(1, Ordering::Relaxed);
            }
            self.get(
                "/certificates",
                "/certificates?limit=50",
                Some(&token),
                StatusCode::OK,
            )
            .await;
            self.get(
                "/exports/batches",
                "/exports/batches?limit=20",
                Some(&token),
                StatusCode::OK,
            )
            .await;
        }
    }
}
