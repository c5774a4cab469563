//! What the commands' OpenAPI descriptions share, declared once: the retry and concurrency headers
//! they read, and the answers they give (the resource and its ETag).

use super::view::{PortfolioView, ProgramView};
use utoipa::{IntoParams, IntoResponses};

/// The headers of a command on an existing resource (see `http::command`).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct CommandHeaders {
    /// Makes a retry return the first outcome (1-200 characters). Bound to the first body sent with
    /// it: the same key with another body is 422 `idempotency_key_reused`.
    #[param(rename = "Idempotency-Key", example = "7f9c2ba4-retry-1")]
    idempotency_key: Option<String>,
    /// The ETag the client decided on; 412 `version_mismatch` when the resource has moved on.
    #[param(rename = "If-Match", example = "\"7\"")]
    if_match: Option<String>,
}

/// The header of a command that creates a resource (nothing to match yet).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct CreateHeaders {
    /// Makes a retry return the first outcome, and the same new id (1-200 characters). Bound to the
    /// first body sent with it: the same key with another body is 422 `idempotency_key_reused`.
    #[param(rename = "Idempotency-Key", example = "7f9c2ba4-retry-1")]
    idempotency_key: Option<String>,
}

/// A portfolio command's answer.
#[derive(Debug, IntoResponses)]
#[response(
    status = 200,
    description = "The portfolio as it stands now",
    headers(("ETag" = String, description = "The stream version, e.g. \"7\""))
)]
#[allow(dead_code)]
pub struct PortfolioAnswer(PortfolioView);

/// Opening a portfolio's answer.
#[derive(Debug, IntoResponses)]
#[response(
    status = 201,
    description = "Opened",
    headers(("ETag" = String, description = "The stream version, e.g. \"1\""))
)]
#[allow(dead_code)]
pub struct PortfolioCreated(PortfolioView);

/// A program command's answer.
#[derive(Debug, IntoResponses)]
#[response(
    status = 200,
    description = "The program as it stands now",
    headers(("ETag" = String, description = "The stream version, e.g. \"7\""))
)]
#[allow(dead_code)]
pub struct ProgramAnswer(ProgramView);

/// Registering a program's answer.
#[derive(Debug, IntoResponses)]
#[response(
    status = 201,
    description = "Registered",
    headers(("ETag" = String, description = "The stream version, e.g. \"1\""))
)]
#[allow(dead_code)]
pub struct ProgramCreated(ProgramView);
