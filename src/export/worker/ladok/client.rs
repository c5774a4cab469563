//! The Ladok HTTP client (reqwest, native-tls for the PKCS#12 client certificate).
//!
//! Delivery is idempotent by "look before you create": every attempt looks the student's other merits
//! through for our certificate id in the external-reference field before it creates one, and a retry
//! repeats the whole look-then-create, so a merit created by an attempt whose answer was lost (a
//! timeout, a crash between Ladok's 200 and our event) is found, not created again.

use serde_json::{Value, json};

use super::{LadokConfig, LadokError, media};
use crate::export::{ExportCertificate, ExportSettings};

/// The client of one worker run.
#[derive(Debug, Clone)]
pub struct LadokClient {
    http: reqwest::Client,
    config: LadokConfig,
}

/// The AnnanMerit a certificate becomes (or, revoked, is changed to).
#[derive(Debug, Clone, PartialEq)]
pub struct MeritBody(pub Value);

impl MeritBody {
    /// `Benamning`, `Beskrivning`, `Resultat`, `Examinationsdatum`, `Attesterad`, `TillatenIBevis`,
    /// the student's Ladok UID and our certificate id as the external reference. A revoked
    /// certificate's merit is no longer attested nor allowed in the degree certificate.
    pub fn new(
        certificate: &ExportCertificate,
        student_uid: &str,
        settings: &ExportSettings,
        external_reference_field: &str,
    ) -> Self {
        let standing = !certificate.is_revoked();
        let mut body = json!({
            "Benamning": settings.merit_name,
            "Beskrivning": certificate.description(),
            "Resultat": if standing { settings.result.as_str() } else { "" },
            "Examinationsdatum": certificate.decided_on().to_string(),
            "Attesterad": standing,
            "TillatenIBevis": standing,
            "StudentUID": student_uid,
        });
        body[external_reference_field] = Value::String(certificate.certificate_id().to_string());
        Self(body)
    }
}

impl LadokClient {
    pub fn new(config: LadokConfig) -> Result<Self, LadokError> {
        let identity =
            reqwest::Identity::from_pkcs12_der(&config.pkcs12_der, &config.pkcs12_password)
                .map_err(|e| LadokError::Config(format!("PKCS#12 client certificate: {e}")))?;
        let mut builder = reqwest::Client::builder()
            .use_native_tls()
            .identity(identity)
            .timeout(config.timeout)
            .connect_timeout(config.timeout);
        if let Some(pem) = &config.extra_root_pem {
            let root = reqwest::Certificate::from_pem(pem)
                .map_err(|e| LadokError::Config(format!("root certificate: {e}")))?;
            builder = builder.add_root_certificate(root);
        }
        let http = builder
            .build()
            .map_err(|e| LadokError::Config(e.to_string()))?;
        Ok(Self { http, config })
    }

    /// Records (or, for a revocation, withdraws) the certificate's merit in Ladok and returns the
    /// merit's Ladok UID. Retries the whole look-then-write on 5xx, timeouts and connection errors
    /// with exponential backoff.
    pub async fn deliver(
        &self,
        certificate: &ExportCertificate,
        settings: &ExportSettings,
    ) -> Result<String, LadokError> {
        let mut attempt = 1;
        loop {
            match self.deliver_once(certificate, settings).await {
                Err(LadokError::Unavailable(why)) if attempt < self.config.retry.max_attempts => {
                    let delay = self.config.retry.delay(attempt);
                    tracing::warn!(certificate_id = %certificate.certificate_id(), attempt,
                        delay_ms = delay.as_millis() as u64, reason = %why, "Ladok unavailable; retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn deliver_once(
        &self,
        certificate: &ExportCertificate,
        settings: &ExportSettings,
    ) -> Result<String, LadokError> {
        // The student: looked up by identity number when we have it (Ladok's answer is
        // authoritative); an erased holder's revocation uses the Ladok UID from the approval.
        let student_uid = match certificate.holder() {
            Some(holder) => self.student_uid(holder.identity_number.as_str()).await?,
            None => certificate.student_uid().to_string(),
        };
        let reference = certificate.certificate_id().to_string();
        let existing = self.find_merit(&student_uid, &reference).await?;
        let body = MeritBody::new(
            certificate,
            &student_uid,
            settings,
            &self.config.external_reference_field,
        );
        if certificate.is_revoked() {
            let merit_uid = existing.ok_or(LadokError::MeritNotFound)?;
            let path = self
                .config
                .paths
                .update_merit
                .replace("{merit_uid}", &merit_uid);
            self.send(reqwest::Method::PUT, &path, media::RESULTAT, Some(&body.0))
                .await?;
            return Ok(merit_uid);
        }
        if let Some(merit_uid) = existing {
            return Ok(merit_uid);
        }
        let created = self
            .send(
                reqwest::Method::POST,
                &self.config.paths.create_merit,
                media::RESULTAT,
                Some(&body.0),
            )
            .await?;
        uid_of(&created).ok_or_else(|| LadokError::Unexpected("created merit without Uid".into()))
    }

    /// The student's Ladok UID.
    pub async fn student_uid(&self, identity_number: &str) -> Result<String, LadokError> {
        let path = self
            .config
            .paths
            .student_by_pnr
            .replace("{pnr}", identity_number);
        let student = self
            .send(reqwest::Method::GET, &path, media::STUDENTINFORMATION, None)
            .await
            .map_err(|e| match e {
                LadokError::Unexpected(s) if s.starts_with("404") => LadokError::StudentNotFound,
                other => other,
            })?;
        uid_of(&student).ok_or_else(|| LadokError::Unexpected("student without Uid".into()))
    }

    /// The UID of the student's other merit whose external reference is ours, if any.
    pub async fn find_merit(
        &self,
        student_uid: &str,
        reference: &str,
    ) -> Result<Option<String>, LadokError> {
        let path = self
            .config
            .paths
            .merits_of_student
            .replace("{student_uid}", student_uid);
        let list = self
            .send(reqwest::Method::GET, &path, media::RESULTAT, None)
            .await?;
        // Either a bare array or an object holding one (Ladok wraps lists in a named field).
        let merits = match &list {
            Value::Array(items) => items.clone(),
            Value::Object(fields) => fields
                .values()
                .find_map(|v| v.as_array().cloned())
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        let field = &self.config.external_reference_field;
        Ok(merits
            .iter()
            .find(|m| m.get(field).and_then(Value::as_str) == Some(reference))
            .and_then(uid_of))
    }

    /// One request, classified: JSON on success; [`LadokError`] otherwise.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        media_type: &str,
        body: Option<&Value>,
    ) -> Result<Value, LadokError> {
        // Appended, not `Url::join`ed: a base URL with a path of its own keeps it.
        let url = format!(
            "{}/{}",
            self.config.base_url.as_str().trim_end_matches('/'),
            path.trim_start_matches('/')
        );
        let mut request = self
            .http
            .request(method, url)
            .header(reqwest::header::ACCEPT, media_type);
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, media_type)
                .body(body.to_string());
        }
        let response = request.send().await.map_err(|e| {
            // Timeouts and refused or broken connections are worth another attempt.
            LadokError::Unavailable(if e.is_timeout() {
                "timeout".to_owned()
            } else {
                "connection error".to_owned()
            })
        })?;
        let status = response.status();
        let is_json = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("json"));
        let bytes = response
            .bytes()
            .await
            .map_err(|_| LadokError::Unavailable("body interrupted".to_owned()))?;
        if status.is_server_error() {
            return Err(LadokError::Unavailable(format!(
                "status {}",
                status.as_u16()
            )));
        }
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(LadokError::Authentication);
        }
        if status.is_success() {
            // An expired session answers 200 with an HTML login page: not our data.
            if !is_json {
                return Err(LadokError::Authentication);
            }
            if bytes.is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_slice(&bytes)
                .map_err(|_| LadokError::Unexpected("a body that is not JSON".to_owned()));
        }
        let error: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        match error.get("Felgrupp").and_then(Value::as_str) {
            Some(felgrupp) if felgrupp.contains("auktorisering") => Err(LadokError::Authentication),
            Some(felgrupp) => Err(LadokError::Rule {
                felgrupp: felgrupp.to_owned(),
                detaljkod: error
                    .get("Detaljkod")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            }),
            None => Err(LadokError::Unexpected(format!("{} ", status.as_u16()))),
        }
    }
}

fn uid_of(value: &Value) -> Option<String> {
    value.get("Uid").and_then(Value::as_str).map(str::to_owned)
}
