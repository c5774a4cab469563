//! Delivery to Ladok3 over its REST API: mutual TLS with the institution's PKCS#12 client
//! certificate, one media type per Ladok service, and a certificate recorded as an other merit
//! (`AnnanMerit`) that is created, then attested with the program's decision, and withdrawn
//! (makulerad) with a decision when the certificate is revoked.
//!
//! - [`schema`]: the schema's types, checked before sending and rendered as XML for validation;
//! - [`operations`]: the table of paths and media types (most of them unverified: configuration);
//! - [`merit`]: the bodies a certificate becomes, and the marker that recognises our merits;
//! - [`client`]: the HTTP client; [`check`]: `cim ladok check`, read-only.
//!
//! Facts and unverified points: `docs/ladok.md`.

pub mod check;
mod client;
mod error;
pub mod merit;
pub mod operations;
pub mod schema;

pub use client::{LadokClient, LadokMerit, LadokStudent};
pub use error::LadokError;
pub use operations::{Endpoint, Evidence, LadokOperations, Operation};

use std::time::Duration;

/// Ladok's media types: one per Ladok service, in `Accept` and (for bodies) `Content-Type`.
pub mod media {
    pub const STUDENTINFORMATION: &str = "application/vnd.ladok-studentinformation+json";
    pub const RESULTAT: &str = "application/vnd.ladok-resultat+json";
}

/// How failed requests are retried: exponential backoff from `base_delay`, doubled per attempt and
/// capped at `max_delay`, at most `max_attempts` attempts in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The pause before attempt `attempt + 1` (attempt counts from 1).
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// Everything the client needs. The PKCS#12 bytes and passphrase are secrets: `Debug` hides them.
#[derive(Clone)]
pub struct LadokConfig {
    /// e.g. `https://api.test.ladok.se`.
    pub base_url: url::Url,
    /// The client certificate and key issued by Ladok, as a PKCS#12 (`.p12`/`.pfx`) file's bytes.
    pub pkcs12_der: Vec<u8>,
    pub pkcs12_password: String,
    /// An extra trusted root certificate (PEM), e.g. the fake Ladok's CA in tests and `cim-demo`.
    pub extra_root_pem: Option<Vec<u8>>,
    pub operations: LadokOperations,
    /// Merits asked for per page when a student's merits are read.
    pub page_size: u32,
    /// At most this many pages are read (a guard against a Ladok that pages without end).
    pub max_pages: u32,
    /// Per request.
    pub timeout: Duration,
    pub retry: RetryPolicy,
}

impl LadokConfig {
    /// How long after a write was recorded as about to be sent it may still be in flight: the
    /// request's own timeout, twice over (connect and answer), plus a second. A successor worker
    /// that finds such a write unsettled waits this long before it looks whether it took effect.
    pub fn in_flight_bound(&self) -> Duration {
        self.timeout * 2 + Duration::from_secs(1)
    }
}

impl std::fmt::Debug for LadokConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LadokConfig")
            .field("base_url", &self.base_url.as_str())
            .field("operations", &self.operations)
            .field("page_size", &self.page_size)
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl LadokConfig {
    /// A configuration with the default operations, page size (100), timeout (30 s) and retry
    /// policy.
    pub fn new(base_url: url::Url, pkcs12_der: Vec<u8>, pkcs12_password: String) -> Self {
        Self {
            base_url,
            pkcs12_der,
            pkcs12_password,
            extra_root_pem: None,
            operations: LadokOperations::default(),
            page_size: 100,
            max_pages: 1000,
            timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(700),
        };
        let delays: Vec<u128> = (1..=5).map(|a| p.delay(a).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 700, 700]);
    }
}
