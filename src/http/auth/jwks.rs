//! The identity provider's signing keys, fetched from its JWKS URL and kept fresh.
//!
//! Providers rotate their keys: a new key appears in the JWKS some time before tokens are signed
//! with it, and an old one disappears after its tokens have expired. So the set is fetched at
//! start-up, again whenever it is older than the refresh interval, and at once when a token names a
//! key id we do not know (a rotation we have not seen yet), at most once per cool-down so that
//! made-up key ids cannot turn us into a load generator against the provider. A failed fetch keeps
//! the last good set: an outage of the provider does not log everybody out.

use super::verify::{KeyError, VerifyingKey, keys_of};
use jsonwebtoken::jwk::JwkSet;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use url::Url;

/// Largest JWKS document accepted (providers publish a few keys, a few KiB).
const MAX_JWKS_BYTES: usize = 1024 * 1024;
/// How long one fetch may take before it counts as failed.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// When to fetch the set again.
#[derive(Debug, Clone, Copy)]
pub struct JwksTiming {
    /// Fetch again when the set is older than this.
    pub refresh_every: Duration,
    /// Least time between two fetches caused by unknown key ids or failures.
    pub cool_down: Duration,
}

impl Default for JwksTiming {
    fn default() -> Self {
        Self {
            refresh_every: Duration::from_secs(300),
            cool_down: Duration::from_secs(30),
        }
    }
}

#[derive(Default)]
struct Fetched {
    keys: Arc<Vec<VerifyingKey>>,
    /// When the current keys were fetched; `None` until the first successful fetch.
    at: Option<Instant>,
}

/// A JWKS behind a URL, with the keys of its last successful fetch.
pub struct RemoteJwks {
    url: Url,
    client: reqwest::Client,
    timing: JwksTiming,
    fetched: RwLock<Fetched>,
    /// Held while fetching, so concurrent requests wait for one fetch instead of starting their
    /// own; holds the time of the last attempt, successful or not.
    attempt: tokio::sync::Mutex<Option<Instant>>,
}

impl std::fmt::Debug for RemoteJwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteJwks")
            .field("url", &self.url.as_str())
            .field("keys", &self.keys().len())
            .finish()
    }
}

impl RemoteJwks {
    pub fn new(url: Url, timing: JwksTiming) -> Result<Self, KeyError> {
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .build()
            .map_err(|e| KeyError::Fetch {
                url: url.to_string(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            url,
            client,
            timing,
            fetched: RwLock::new(Fetched::default()),
            attempt: tokio::sync::Mutex::new(None),
        })
    }

    /// The keys of the last successful fetch (empty before the first).
    pub fn keys(&self) -> Arc<Vec<VerifyingKey>> {
        self.read().keys.clone()
    }

    /// Whether a fetch has ever succeeded (readiness).
    pub fn has_fetched(&self) -> bool {
        self.read().at.is_some()
    }

    /// Fetches now, whatever the timing says (start-up).
    pub async fn fetch_now(&self) -> Result<usize, KeyError> {
        let mut attempt = self.attempt.lock().await;
        *attempt = Some(Instant::now());
        self.fetch_and_store().await
    }

    /// Fetches when the set is older than the refresh interval (or was never fetched), unless the
    /// last attempt failed within the cool-down.
    pub async fn refresh_if_stale(&self) {
        let stale =
            |at: Option<Instant>| at.is_none_or(|t| t.elapsed() >= self.timing.refresh_every);
        if !stale(self.read().at) {
            return;
        }
        let mut attempt = self.attempt.lock().await;
        // Another request may have fetched while this one waited for the lock.
        let fetched_at = self.read().at;
        if !stale(fetched_at) {
            return;
        }
        // After a failed attempt (one later than the last success) wait out the cool-down.
        let failed = attempt.filter(|t| fetched_at.is_none_or(|ok| *t > ok));
        if self.cooling_down(failed) {
            return;
        }
        *attempt = Some(Instant::now());
        self.fetch_logged().await;
    }

    /// Fetches because a token names a key id that is not in the set; `true` when the set was
    /// fetched (so the token is worth checking again).
    pub async fn refresh_for_unknown_key(&self) -> bool {
        let mut attempt = self.attempt.lock().await;
        if self.cooling_down(*attempt) {
            return false;
        }
        *attempt = Some(Instant::now());
        self.fetch_logged().await
    }

    fn cooling_down(&self, last_attempt: Option<Instant>) -> bool {
        last_attempt.is_some_and(|t| t.elapsed() < self.timing.cool_down)
    }

    async fn fetch_logged(&self) -> bool {
        match self.fetch_and_store().await {
            Ok(count) => {
                tracing::info!(keys = count, "fetched the identity provider's signing keys");
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "keeping the signing keys fetched before");
                false
            }
        }
    }

    async fn fetch_and_store(&self) -> Result<usize, KeyError> {
        let keys = self.fetch().await?;
        let count = keys.len();
        let mut fetched = self.fetched.write().unwrap_or_else(|p| p.into_inner());
        *fetched = Fetched {
            keys: Arc::new(keys),
            at: Some(Instant::now()),
        };
        Ok(count)
    }

    async fn fetch(&self) -> Result<Vec<VerifyingKey>, KeyError> {
        let failed = |reason: String| KeyError::Fetch {
            url: self.url.to_string(),
            reason,
        };
        let mut response = self
            .client
            .get(self.url.clone())
            .header(
                reqwest::header::ACCEPT,
                "application/jwk-set+json, application/json",
            )
            .send()
            .await
            .map_err(|e| failed(e.to_string()))?;
        if !response.status().is_success() {
            return Err(failed(format!("answered {}", response.status())));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| failed(e.to_string()))? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_JWKS_BYTES {
                return Err(failed(format!(
                    "the document is larger than {MAX_JWKS_BYTES} bytes"
                )));
            }
        }
        let set: JwkSet = serde_json::from_slice(&body)
            .map_err(|e| failed(format!("not a JSON Web Key Set: {e}")))?;
        let keys = keys_of(&set);
        if keys.is_empty() {
            return Err(failed(
                "it holds no RS256 or ES256 (P-256) signing key".into(),
            ));
        }
        Ok(keys)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Fetched> {
        self.fetched.read().unwrap_or_else(|p| p.into_inner())
    }
}
