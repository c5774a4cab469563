//! Signing in at the university's identity provider: OpenID Connect, the authorisation-code flow
//! with PKCE (`openidconnect`), as a confidential client when a secret is configured and a public
//! one otherwise.
//!
//! [`Provider::begin`] stores the `state`, the `nonce` and the PKCE verifier in
//! `console_signins` and sends the browser to the provider; [`Provider::finish`] takes that row
//! back (once: a `state` cannot be replayed), exchanges the code with the verifier, checks the ID
//! token (signature by the provider's published keys, issuer, audience, expiry, nonce) and reads
//! who the person is through the API's claim mapping (`http::auth::claims`), so a person has the
//! same role and programs on a page as with a token.
//!
//! The provider's metadata is discovered at start-up; its keys with it (a provider that rotates
//! its keys is picked up at the next start, or by [`Provider::refresh`] when a token names a key
//! we do not have).

use crate::http::auth::claims::{ClaimMapping, Identity};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use sqlx::PgPool;
use std::sync::RwLock;

/// How the console signs in at the identity provider (`CIM_OIDC_*`).
#[derive(Debug, Clone)]
pub struct OidcSettings {
    /// The provider's issuer URL; its discovery document is `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    /// Where the provider sends the browser back: `<public URL>/console/callback`.
    pub redirect_url: String,
    /// Scopes asked for besides `openid` (for example `profile email groups`).
    pub scopes: Vec<String>,
}

/// The configured identity provider, discovered.
#[derive(Debug)]
pub struct Provider {
    settings: OidcSettings,
    metadata: RwLock<CoreProviderMetadata>,
    http: openidconnect::reqwest::Client,
    mapping: ClaimMapping,
}

/// Why a sign-in did not finish. Shown to the person as one sentence; the details are logged.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("the identity provider could not be reached or answered wrongly: {0}")]
    Provider(String),
    #[error("this sign-in was not started here, or was already finished")]
    UnknownState,
    #[error("the identity provider refused the sign-in: {0}")]
    Refused(String),
    #[error("the ID token could not be verified: {0}")]
    Token(String),
    #[error("the identity provider does not say who this is in a way the claim mapping reads: {0}")]
    Claims(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl Provider {
    /// Discovers the provider (its endpoints and keys).
    pub async fn discover(
        settings: OidcSettings,
        mapping: ClaimMapping,
    ) -> Result<Self, SignInError> {
        let http = openidconnect::reqwest::ClientBuilder::new()
            // Following redirects would let a provider's answer point us anywhere (SSRF).
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| SignInError::Provider(e.to_string()))?;
        let metadata = discover(&settings.issuer, &http).await?;
        Ok(Provider {
            settings,
            metadata: RwLock::new(metadata),
            http,
            mapping,
        })
    }

    /// Reads the provider's metadata and keys again.
    pub async fn refresh(&self) -> Result<(), SignInError> {
        let metadata = discover(&self.settings.issuer, &self.http).await?;
        *self.metadata.write().expect("not poisoned") = metadata;
        Ok(())
    }

    fn client(
        &self,
    ) -> Result<
        openidconnect::core::CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        SignInError,
    > {
        let metadata = self.metadata.read().expect("not poisoned").clone();
        let redirect = RedirectUrl::new(self.settings.redirect_url.clone())
            .map_err(|e| SignInError::Provider(e.to_string()))?;
        Ok(CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.settings.client_id.clone()),
            self.settings.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(redirect))
    }

    /// Starts a sign-in that comes back to `return_to`, for the browser holding `browser` (its
    /// pre-session cookie): the provider's URL to send the browser to.
    pub async fn begin(
        &self,
        pool: &PgPool,
        return_to: &str,
        browser: &str,
    ) -> Result<String, SignInError> {
        let client = self.client()?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for scope in &self.settings.scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        sqlx::query!(
            "INSERT INTO console_signins (state, browser_hash, nonce, pkce_verifier, return_to)
             VALUES ($1, $2, $3, $4, $5)",
            state.secret(),
            browser_hash(browser),
            nonce.secret(),
            verifier.secret(),
            return_to,
        )
        .execute(pool)
        .await?;
        // Abandoned sign-ins are swept here: starting one is rare and cheap to piggyback.
        sqlx::query!("DELETE FROM console_signins WHERE created_at < now() - interval '1 hour'")
            .execute(pool)
            .await?;
        Ok(url.to_string())
    }

    /// Finishes the sign-in whose `state` came back with `code` to the browser holding `browser`:
    /// who signed in, and where they were going. Another browser's callback finishes nothing.
    pub async fn finish(
        &self,
        pool: &PgPool,
        state: &str,
        code: &str,
        browser: &str,
    ) -> Result<(Identity, String), SignInError> {
        let started = sqlx::query!(
            "DELETE FROM console_signins
             WHERE state = $1 AND browser_hash = $2 AND created_at > now() - interval '1 hour'
             RETURNING nonce, pkce_verifier, return_to",
            state,
            browser_hash(browser),
        )
        .fetch_optional(pool)
        .await?
        .ok_or(SignInError::UnknownState)?;
        let client = self.client()?;
        let answer = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| SignInError::Provider(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(started.pkce_verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| SignInError::Refused(e.to_string()))?;
        let id_token = answer
            .id_token()
            .ok_or_else(|| SignInError::Token("the answer has no ID token".to_owned()))?;
        let nonce = Nonce::new(started.nonce);
        let verified = id_token.claims(&client.id_token_verifier(), &nonce);
        if let Err(e) = verified {
            // A key we do not know yet: the provider may have rotated; one refresh, one retry.
            self.refresh().await?;
            let client = self.client()?;
            id_token
                .claims(&client.id_token_verifier(), &nonce)
                .map_err(|_| SignInError::Token(e.to_string()))?;
        }
        // Verified above: the mapping reads every claim, standard or not, from the payload.
        let claims = payload(&id_token.to_string())?;
        let identity = self
            .mapping
            .identity(&claims)
            .map_err(|e| SignInError::Claims(e.to_string()))?;
        Ok((identity, started.return_to))
    }
}

async fn discover(
    issuer: &str,
    http: &openidconnect::reqwest::Client,
) -> Result<CoreProviderMetadata, SignInError> {
    let issuer =
        IssuerUrl::new(issuer.to_owned()).map_err(|e| SignInError::Provider(e.to_string()))?;
    CoreProviderMetadata::discover_async(issuer, http)
        .await
        .map_err(|e| SignInError::Provider(e.to_string()))
}

fn browser_hash(browser: &str) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(browser.as_bytes()).to_vec()
}

/// The claims of a compact JWT (its middle part), already verified by the caller.
fn payload(jwt: &str) -> Result<serde_json::Value, SignInError> {
    let middle = jwt
        .split('.')
        .nth(1)
        .ok_or_else(|| SignInError::Token("not a compact JWT".to_owned()))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(middle)
        .map_err(|e| SignInError::Token(e.to_string()))?;
    serde_json::from_slice(&bytes).map_err(|e| SignInError::Token(e.to_string()))
}
