//! The issuer settings of `cim serve` (`docs/credentials.md`).

use clap::Args;

use crate::credential::issuer::IssuerConfig;

#[derive(Debug, Args)]
pub struct IssuerArgs {
    /// Where this service is reached from outside (e.g. `https://cim.ki.se`): credential ids, the
    /// issuer profile, its keys and the status list are URLs under it. With `CIM_ISSUER_NAME`,
    /// turns credentials on.
    #[arg(long, env = "CIM_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// The university's name as the issuer of credentials.
    #[arg(long, env = "CIM_ISSUER_NAME")]
    pub issuer_name: Option<String>,
    /// The university's web site, shown in the issuer's profile.
    #[arg(long, env = "CIM_ISSUER_URL")]
    pub issuer_url: Option<String>,
}

impl IssuerArgs {
    /// The issuer, when both the address and the name are configured.
    pub fn config(&self) -> anyhow::Result<Option<IssuerConfig>> {
        match (&self.public_url, &self.issuer_name) {
            (Some(url), Some(name)) => {
                let parsed = url::Url::parse(url)
                    .map_err(|e| anyhow::anyhow!("CIM_PUBLIC_URL is not a URL: {e}"))?;
                if !matches!(parsed.scheme(), "https" | "http") {
                    anyhow::bail!("CIM_PUBLIC_URL must be an http(s) URL");
                }
                Ok(Some(IssuerConfig {
                    public_url: url.trim_end_matches('/').to_owned(),
                    name: name.clone(),
                    url: self.issuer_url.clone(),
                }))
            }
            (None, None) => Ok(None),
            _ => anyhow::bail!("set both CIM_PUBLIC_URL and CIM_ISSUER_NAME to issue credentials"),
        }
    }
}
