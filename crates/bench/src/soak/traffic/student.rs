//! The soak's students: each enrols, opens a portfolio and takes it to the certificate, sending the
//! requests that must be refused on the way.

use super::{ITEMS, POLL, REVIEW_TIMEOUT, Traffic, soak_identity_number};
use chrono::{TimeDelta, Utc};
use cim::domain::ProgramId;
use cim::http::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use uuid::Uuid;

impl Traffic {
    /// A student, one portfolio after the other.
    pub(super) async fn student(self: Arc<Self>, worker: usize) {
        let mut round = 0;
        while !self.stopping() {
            let program = self.programs[(worker + round) % self.programs.len()];
            round += 1;
            if self.one_student(program).await.is_none() && !self.stopping() {
                // The failed step is recorded; do not hammer a server that fails.
                self.pause(Duration::from_millis(500)).await;
            }
        }
    }

    /// From enrolment to the certificate (`None`: a step failed, or the run ended).
    async fn one_student(&self, program: ProgramId) -> Option<()> {
        let uid = Uuid::new_v4().to_string();
        let token = self.token(Role::Student, &uid, Vec::new())?;
        let today = Utc::now().date_naive();
        let n = self.counters.enrolled.fetch_add(1, Ordering::Relaxed);
        let open = json!({
            "student_uid": uid,
            "identity_number": soak_identity_number(n),
            "given_names": "Tolvan",
            "family_name": "Tolvansson",
            "email": "tolvan@student.example.se",
            "expected_completion": today + TimeDelta::days(365),
        })
        .to_string();
        let opened = self
            .call(
                Method::POST,
                "/programs/{id}/portfolios",
                &format!("/programs/{program}/portfolios"),
                Some(&token),
                Some(&open),
                StatusCode::CREATED,
            )
            .await?;
        self.counters
            .portfolios_opened
            .fetch_add(1, Ordering::Relaxed);
        let portfolio = format!("/portfolios/{}", opened["view"]["portfolio_id"].as_str()?);
        self.read(&portfolio, &token).await?;

        let mut activities = Vec::new();
        for (k, item) in ITEMS.iter().enumerate() {
            let ended = today - TimeDelta::days(20 + 5 * k as i64);
            let body = json!({
                "item": item,
                "started_on": ended - TimeDelta::days(2),
                "ended_on": ended,
                "description": "Two evenings a week with students from abroad.",
            })
            .to_string();
            let view = self
                .post(
                    "/portfolios/{id}/activities",
                    &format!("{portfolio}/activities"),
                    &token,
                    &body,
                )
                .await?;
            let last = view["view"]["activities"].as_array()?.last()?;
            activities.push(format!(
                "{portfolio}/activities/{}",
                last["activity_id"].as_str()?
            ));
        }
        self.bad_requests(&portfolio, &activities[0], &token).await;
        for activity in &activities {
            self.post(
                "/portfolios/{id}/activities/{id}/reflection",
                &format!("{activity}/reflection"),
                &token,
                &self.reflection,
            )
            .await?;
            self.read(&portfolio, &token).await?;
        }
        // The final reflection also waits for a coordinator to confirm the expected completion.
        self.wait_for(&portfolio, &token, |view| {
            view["expected_completion_confirmed"] == true
                && view["activities"]
                    .as_array()
                    .is_some_and(|a| a.iter().all(|a| a["status"] == "approved"))
        })
        .await?;
        self.post(
            "/portfolios/{id}/final-reflection",
            &format!("{portfolio}/final-reflection"),
            &token,
            &self.final_reflection,
        )
        .await?;
        self.wait_for(&portfolio, &token, |view| {
            view["final_reflection"]["status"] == "approved"
        })
        .await?;
        self.post(
            "/portfolios/{id}/application",
            &format!("{portfolio}/application"),
            &token,
            "{}",
        )
        .await?;
        self.wait_for(&portfolio, &token, |view| view["phase"] == "certified")
            .await?;
        self.get(
            "/me/portfolios",
            "/me/portfolios",
            Some(&token),
            StatusCode::OK,
        )
        .await?;
        Some(())
    }

    /// Reads the portfolio until `done(view)`; a review that does not come in time is an error.
    async fn wait_for(
        &self,
        portfolio: &str,
        token: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Option<()> {
        let deadline = Instant::now() + REVIEW_TIMEOUT;
        loop {
            let answer = self.read(portfolio, token).await?;
            if done(&answer["view"]) {
                return Some(());
            }
            if self.stopping() {
                return None;
            }
            if Instant::now() > deadline {
                self.recorder.error(format!(
                    "a review did not come within {} s",
                    REVIEW_TIMEOUT.as_secs()
                ));
                return None;
            }
            self.pause(POLL).await;
        }
    }

    /// Requests that must be refused, each with its own status: a reflection outside its band
    /// (422), malformed JSON (400), no token (401), a student approving (403), a portfolio that does
    /// not exist (404) and a path that is not a portfolio id (400).
    async fn bad_requests(&self, portfolio: &str, activity: &str, token: &str) {
        let post = |route: &'static str, path: String, body: &'static str, expected| async move {
            self.call(
                Method::POST,
                route,
                &path,
                Some(token),
                Some(body),
                expected,
            )
            .await
        };
        self.call(
            Method::POST,
            "/portfolios/{id}/activities/{id}/reflection",
            &format!("{activity}/reflection"),
            Some(token),
            Some(&self.short_reflection),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        post(
            "/portfolios/{id}/activities",
            format!("{portfolio}/activities"),
            "{\"item\": ",
            StatusCode::BAD_REQUEST,
        )
        .await;
        post(
            "/portfolios/{id}/activities/{id}/reflection/approve",
            format!("{activity}/reflection/approve"),
            "{}",
            StatusCode::FORBIDDEN,
        )
        .await;
        self.get(
            "/portfolios/{id}",
            portfolio,
            None,
            StatusCode::UNAUTHORIZED,
        )
        .await;
        self.get(
            "/portfolios/{id}",
            &format!("/portfolios/{}", Uuid::new_v4()),
            Some(token),
            StatusCode::NOT_FOUND,
        )
        .await;
        self.get(
            "/portfolios/{id}",
            "/portfolios/not-a-portfolio",
            Some(token),
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
}
