//! Delivery to Ladok3 over its REST API: mutual TLS with the institution's PKCS#12 client
//! certificate, one media type per Ladok service, and an attested "other merit" (`AnnanMerit`,
//! allowed in the degree certificate) per CIM.
//!
//! Facts and unverified points: `shared/docs/ladok-and-exports.md`. Everything unverified (the
//! merit paths, the external-reference field name) is configuration ([`LadokPaths`],
//! [`LadokConfig::external_reference_field`]) with a sensible default.

mod client;
mod error;

pub use client::{LadokClient, MeritBody};
pub use error::LadokError;

use std::time::Duration;

/// Ladok's media types: one per service, in `Accept` and (for bodies) `Content-Type`.
pub mod media {
    pub const STUDENTINFORMATION: &str = "application/vnd.ladok-studentinformation+json";
    pub const RESULTAT: &str = "application/vnd.ladok-resultat+json";
}

/// The request paths, relative to the base URL. `{pnr}`, `{student_uid}` and `{merit_uid}` are
/// replaced. Only the student lookup is confirmed by public sources; the merit paths are our choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LadokPaths {
    /// `GET`: the student by 12-digit identity number.
    pub student_by_pnr: String,
    /// `GET`: the student's other merits (looked through for our external reference).
    pub merits_of_student: String,
    /// `POST`: creates an other merit.
    pub create_merit: String,
    /// `PUT`: updates one other merit (a revocation withdraws it from the degree certificate).
    pub update_merit: String,
}

impl Default for LadokPaths {
    fn default() -> Self {
        Self {
            student_by_pnr: "/studentinformation/student/personnummer/{pnr}".to_owned(),
            merits_of_student: "/resultat/annanmerit/student/{student_uid}".to_owned(),
            create_merit: "/resultat/annanmerit".to_owned(),
            update_merit: "/resultat/annanmerit/{merit_uid}".to_owned(),
        }
    }
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
    /// An extra trusted root certificate (PEM), e.g. the fake Ladok's CA in tests and `cim demo`.
    pub extra_root_pem: Option<Vec<u8>>,
    pub paths: LadokPaths,
    /// The JSON field of an AnnanMerit carrying our certificate id (unverified name).
    pub external_reference_field: String,
    /// Per request.
    pub timeout: Duration,
    pub retry: RetryPolicy,
}

impl std::fmt::Debug for LadokConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LadokConfig")
            .field("base_url", &self.base_url.as_str())
            .field("paths", &self.paths)
            .field("external_reference_field", &self.external_reference_field)
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl LadokConfig {
    /// A configuration with the default paths, field name, timeout (30 s) and retry policy.
    pub fn new(base_url: url::Url, pkcs12_der: Vec<u8>, pkcs12_password: String) -> Self {
        Self {
            base_url,
            pkcs12_der,
            pkcs12_password,
            extra_root_pem: None,
            paths: LadokPaths::default(),
            external_reference_field: "ExterntReferens".to_owned(),
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
