//! The Ladok HTTP client (reqwest, native-tls for the PKCS#12 client certificate): one method per
//! [`Operation`], each sending and reading only what Ladok's schemas have ([`schema`]).
//!
//! Reads are retried with backoff on 5xx, timeouts and connection errors. Writes are sent once: a
//! write whose answer was lost may have taken effect, so the worker (`worker/delivery.rs`) looks for
//! the merit by its marker before it writes again, never the client on its own.

use serde_json::Value;

use super::operations::{Endpoint, LadokOperations, Operation, fill};
use super::schema::{self, Root};
use super::{LadokConfig, LadokError};

/// The client of one worker run.
#[derive(Debug, Clone)]
pub struct LadokClient {
    http: reqwest::Client,
    config: LadokConfig,
}

/// A student as Ladok has them (`si:Student`): the fields the worker compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LadokStudent {
    pub uid: String,
    /// 12 digits, when Ladok gives it.
    pub personnummer: Option<String>,
}

/// An other merit as Ladok answers it (`rr:AnnanMerit`).
#[derive(Debug, Clone, PartialEq)]
pub struct LadokMerit {
    pub uid: String,
    pub attested: bool,
    /// `SenastSparad`: the optimistic lock a correction sends back.
    pub last_saved: Option<String>,
    /// The whole representation, for comparing content.
    pub body: Value,
}

impl LadokMerit {
    fn parse(value: &Value) -> Option<Self> {
        Some(Self {
            uid: text(value, "Uid")?,
            attested: value.get("Attesterad").and_then(Value::as_bool) == Some(true),
            last_saved: text(value, "SenastSparad"),
            body: value.clone(),
        })
    }
}

/// A string element of an answer, by its schema name.
pub(super) fn text(value: &Value, name: &str) -> Option<String> {
    value.get(name).and_then(Value::as_str).map(str::to_owned)
}

/// A request body and the schema type it must be.
type Body<'a> = Option<(Root, &'a Value)>;

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

    pub fn config(&self) -> &LadokConfig {
        &self.config
    }

    fn operations(&self) -> &LadokOperations {
        &self.config.operations
    }

    /// Who Ladok takes our client certificate for (`cim ladok check`).
    pub async fn authenticated_user(&self) -> Result<Value, LadokError> {
        self.read(Operation::AuthenticatedUser, &[]).await
    }

    /// The student with this Ladok UID.
    pub async fn student(&self, student_uid: &str) -> Result<LadokStudent, LadokError> {
        let value = self
            .read(Operation::StudentByUid, &[("student_uid", student_uid)])
            .await
            .map_err(not_found_as(LadokError::StudentNotFound))?;
        student_of(&value)
    }

    /// The student with this 12-digit identity number.
    pub async fn student_by_pnr(&self, pnr: &str) -> Result<LadokStudent, LadokError> {
        let value = self
            .read(Operation::StudentByPnr, &[("pnr", pnr)])
            .await
            .map_err(not_found_as(LadokError::StudentNotFound))?;
        student_of(&value)
    }

    /// Every other merit of the student, page by page (pages from 1, in the order the path asks
    /// for), until a page holds none: a Ladok that serves fewer per page than asked (a cap of its
    /// own) is still read to the end. A Ladok that ignores the page number (the same merits again)
    /// is an error, not an endless loop.
    pub async fn merits(&self, student_uid: &str) -> Result<Vec<LadokMerit>, LadokError> {
        let limit = self.config.page_size.max(1);
        let mut all: Vec<LadokMerit> = Vec::new();
        for page in 1..=self.config.max_pages {
            let page_text = page.to_string();
            let limit_text = limit.to_string();
            let list = self
                .read(
                    Operation::MeritsOfStudent,
                    &[
                        ("student_uid", student_uid),
                        ("page", &page_text),
                        ("limit", &limit_text),
                    ],
                )
                .await?;
            // `AndraMeriter`: its merits are `AnnanMerit`; `link` is an array too and is not one.
            let items = match list.get("AnnanMerit") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(items)) => items.clone(),
                Some(_) => return Err(LadokError::Unexpected("AndraMeriter.AnnanMerit".into())),
            };
            let merits: Vec<LadokMerit> = items.iter().filter_map(LadokMerit::parse).collect();
            if merits.len() != items.len() {
                return Err(LadokError::Unexpected("an AnnanMerit without Uid".into()));
            }
            if merits
                .first()
                .is_some_and(|m| all.iter().any(|seen| seen.uid == m.uid))
            {
                return Err(LadokError::Unexpected("paging not honoured".into()));
            }
            if merits.is_empty() {
                return Ok(all);
            }
            all.extend(merits);
        }
        Err(LadokError::Unexpected(format!(
            "more than {} pages of merits",
            self.config.max_pages
        )))
    }

    /// One merit; `None` when Ladok has none with this UID (e.g. after a withdrawal).
    pub async fn merit(&self, merit_uid: &str) -> Result<Option<LadokMerit>, LadokError> {
        match self
            .read(Operation::ReadMerit, &[("merit_uid", merit_uid)])
            .await
        {
            Ok(value) => LadokMerit::parse(&value)
                .map(Some)
                .ok_or_else(|| LadokError::Unexpected("an AnnanMerit without Uid".into())),
            Err(LadokError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates an other merit of the student; its `Uid` as Ladok gives it.
    pub async fn create_merit(
        &self,
        student_uid: &str,
        merit: &Value,
    ) -> Result<LadokMerit, LadokError> {
        let created = self
            .write(
                Operation::CreateMerit,
                &[("student_uid", student_uid)],
                (schema::ANNAN_MERIT_ROOT, merit),
            )
            .await?;
        LadokMerit::parse(&created)
            .ok_or_else(|| LadokError::Unexpected("created merit without Uid".into()))
    }

    /// Attests merits with a decision (`AttesteraAndraMeriter`).
    pub async fn attest(&self, body: &Value) -> Result<(), LadokError> {
        self.write(Operation::AttestMerits, &[], (schema::ATTESTERA_ROOT, body))
            .await
            .map(drop)
    }

    /// Corrects a merit (`AnnanMeritRattning`).
    pub async fn correct(&self, merit_uid: &str, body: &Value) -> Result<(), LadokError> {
        self.write(
            Operation::CorrectMerit,
            &[("merit_uid", merit_uid)],
            (schema::RATTNING_ROOT, body),
        )
        .await
        .map(drop)
    }

    /// Withdraws (makulerar) a merit with a decision (`Beslut`).
    pub async fn withdraw(&self, merit_uid: &str, decision: &Value) -> Result<(), LadokError> {
        self.write(
            Operation::WithdrawMerit,
            &[("merit_uid", merit_uid)],
            (schema::BESLUT_ROOT, decision),
        )
        .await
        .map(drop)
    }

    /// A read, retried with exponential backoff while Ladok is unavailable.
    async fn read(
        &self,
        operation: Operation,
        values: &[(&str, &str)],
    ) -> Result<Value, LadokError> {
        let mut attempt = 1;
        loop {
            match self.send(operation, values, None).await {
                Err(LadokError::Unavailable(why)) if attempt < self.config.retry.max_attempts => {
                    let delay = self.config.retry.delay(attempt);
                    tracing::warn!(operation = operation.name(), attempt,
                        delay_ms = delay.as_millis() as u64, reason = %why, "Ladok unavailable; retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// A write, sent once, after checking the body against the schema.
    async fn write(
        &self,
        operation: Operation,
        values: &[(&str, &str)],
        body: (Root, &Value),
    ) -> Result<Value, LadokError> {
        schema::check(body.0.ty, body.1).map_err(|v| LadokError::Schema(v.to_string()))?;
        self.send(operation, values, Some(body)).await
    }

    /// One request, classified: JSON on success; [`LadokError`] otherwise.
    pub(super) async fn send(
        &self,
        operation: Operation,
        values: &[(&str, &str)],
        body: Body<'_>,
    ) -> Result<Value, LadokError> {
        let endpoint = self.operations().get(operation);
        let response = self
            .request(endpoint, values, body)
            .send()
            .await
            .map_err(|e| {
                // Timeouts and refused or broken connections are worth another attempt.
                LadokError::Unavailable(if e.is_timeout() {
                    "timeout".to_owned()
                } else {
                    "connection error".to_owned()
                })
            })?;
        classify(response).await
    }

    /// The request of `endpoint` with its placeholders filled.
    pub(super) fn request(
        &self,
        endpoint: &Endpoint,
        values: &[(&str, &str)],
        body: Body<'_>,
    ) -> reqwest::RequestBuilder {
        let method =
            reqwest::Method::from_bytes(endpoint.method.as_bytes()).unwrap_or(reqwest::Method::GET);
        self.raw(
            method,
            &fill(&endpoint.path, values),
            &endpoint.media_type,
            body,
        )
    }

    /// A request to `path` (relative to the base URL) with `media_type` in `Accept` (and
    /// `Content-Type` with a body).
    pub(super) fn raw(
        &self,
        method: reqwest::Method,
        path: &str,
        media_type: &str,
        body: Body<'_>,
    ) -> reqwest::RequestBuilder {
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
        if let Some((_, body)) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, media_type)
                .body(body.to_string());
        }
        request
    }
}

fn student_of(value: &Value) -> Result<LadokStudent, LadokError> {
    Ok(LadokStudent {
        uid: text(value, "Uid")
            .ok_or_else(|| LadokError::Unexpected("student without Uid".into()))?,
        personnummer: text(value, "Personnummer"),
    })
}

fn not_found_as(instead: LadokError) -> impl FnOnce(LadokError) -> LadokError {
    move |e| match e {
        LadokError::NotFound => instead,
        other => other,
    }
}

/// An answer as the worker sees it.
async fn classify(response: reqwest::Response) -> Result<Value, LadokError> {
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
    // `LadokException`: only the machine-readable group and code are kept (a message may quote
    // personal data).
    let error: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    match error.get("Felgrupp").and_then(Value::as_str) {
        Some(felgrupp) if felgrupp.contains("auktorisering") => Err(LadokError::Authentication),
        Some(felgrupp)
            if status == reqwest::StatusCode::NOT_FOUND && felgrupp.contains("hittades_inte") =>
        {
            Err(LadokError::NotFound)
        }
        Some(felgrupp) => Err(LadokError::Rule {
            felgrupp: felgrupp.to_owned(),
            detaljkod: text(&error, "Detaljkod"),
        }),
        None if status == reqwest::StatusCode::NOT_FOUND => Err(LadokError::NotFound),
        None => Err(LadokError::Unexpected(format!(
            "status {}",
            status.as_u16()
        ))),
    }
}
