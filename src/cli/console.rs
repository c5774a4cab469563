//! The web console's settings of `cim serve` (`src/console/`).

use crate::console::ConsoleSettings;
use crate::console::oidc::{OidcSettings, Provider};
use crate::http::auth::claims::ClaimMapping;
use anyhow::Context;
use clap::Args;
use std::sync::Arc;

#[derive(Debug, Args)]
pub struct ConsoleArgs {
    /// The identity provider the console signs people in at (OpenID Connect issuer URL, e.g.
    /// `https://login.example.se/realms/ki`). Unset: only the development sign-in, and only when
    /// `CIM_JWT_DEV_SECRET` is set.
    #[arg(long, env = "CIM_OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,
    /// The console's client id at the provider.
    #[arg(long, env = "CIM_OIDC_CLIENT_ID", default_value = "cim-console")]
    pub oidc_client_id: String,
    /// The client secret; unset: a public client (PKCE alone).
    #[arg(long, env = "CIM_OIDC_CLIENT_SECRET", hide_env_values = true)]
    pub oidc_client_secret: Option<String>,
    /// Scopes asked for besides `openid`, space-separated (what carries the names, e-mail and groups).
    #[arg(long, env = "CIM_OIDC_SCOPES", default_value = "profile email")]
    pub oidc_scopes: String,
    /// What the sign-in button calls the provider.
    #[arg(long, env = "CIM_OIDC_NAME", default_value = "the university account")]
    pub oidc_name: String,
}

impl ConsoleArgs {
    /// The console's settings: the provider discovered (a start-up error when it cannot be),
    /// the redirect under `public_url` (`CIM_PUBLIC_URL`).
    pub async fn settings(
        &self,
        public_url: Option<&str>,
        mapping: ClaimMapping,
        dev_signin: bool,
    ) -> anyhow::Result<ConsoleSettings> {
        let oidc = match &self.oidc_issuer {
            None => None,
            Some(issuer) => {
                let public = public_url.context(
                    "CIM_OIDC_ISSUER needs CIM_PUBLIC_URL: the provider sends the browser back to <CIM_PUBLIC_URL>/console/callback",
                )?;
                let settings = OidcSettings {
                    issuer: issuer.clone(),
                    client_id: self.oidc_client_id.clone(),
                    client_secret: self.oidc_client_secret.clone().filter(|s| !s.is_empty()),
                    redirect_url: format!("{}/console/callback", public.trim_end_matches('/')),
                    scopes: self
                        .oidc_scopes
                        .split_whitespace()
                        .map(str::to_owned)
                        .collect(),
                };
                let provider = Provider::discover(settings, mapping)
                    .await
                    .context("cannot discover the identity provider (CIM_OIDC_ISSUER)")?;
                Some((Arc::new(provider), self.oidc_name.clone()))
            }
        };
        Ok(ConsoleSettings { oidc, dev_signin })
    }
}
