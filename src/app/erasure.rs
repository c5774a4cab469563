//! Erasing a student's personal data on request (GDPR), by crypto-shredding.
//!
//! One erasure is one transaction that holds the student's media lock (`media::uploads`) from start
//! to commit, so an upload of the same student lands wholly before it (and is erased) or wholly
//! after it (new data):
//! 1. the student's uploads are read, and their files deleted from the media store unless another
//!    portfolio's row names the same content (checked under that content's lock, so a concurrent
//!    upload of the same bytes elsewhere cannot lose its file);
//! 2. the student's subject key is deleted (a tombstone row stays, see `store::keys`), so are their
//!    identity-number index rows (`store::identity`); plaintext
//!    personal data from before sealing existed is cleared, their `media_uploads` rows are deleted,
//!    and a `PersonalDataErased` event (who, why, how many files) is appended to each of their
//!    portfolios; then it commits.
//!
//! The files go before the commit so that a failure in between leaves nothing personal behind that a
//! retry could no longer find: the rows stay until the commit, a deleted file cannot be un-deleted
//! anyway (and a row whose file is gone reads as "not found").
//!
//! The event log is not rewritten: the sealed personal parts stay where they are and can no longer be
//! opened. Everything non-personal stays readable, including what the registrar must keep of a
//! certificate (its id, program, decision date, activities and the Ladok UID); export batch folders
//! already written are not touched.

mod reason;

use super::{CommandContext, CommandHandler};
use crate::domain::portfolio::{LadokIdentityNumber, PersonalDataErased, StudentDetails};
use crate::domain::values::NonEmptyText;
use crate::domain::{PortfolioEvent, PortfolioId, StaffId, StudentUid};
use crate::log::encode;
use crate::media::uploads::{self, UploadError};
use crate::media::{self, MediaStore};
use crate::store::{AppendError, EventStore, ExpectedVersion, StoreError};
use chrono::{DateTime, SubsecRound, Utc};
use serde::Serialize;
use uuid::Uuid;

/// Longest accepted reason (a case reference and a sentence).
pub const REASON_MAX_LEN: usize = 500;

/// What to erase, by whom and why.
#[derive(Debug, Clone)]
pub struct ErasureRequest {
    pub student_uid: StudentUid,
    /// The administrator (the `sub` of their token, or `--by` of `cim erase`).
    pub by: StaffId,
    /// Why: a case reference rather than personal details, because it is kept for good.
    pub reason: NonEmptyText,
}

/// What an erasure did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ErasureOutcome {
    #[schema(value_type = Uuid)]
    pub student_uid: StudentUid,
    /// When the student's key was deleted (the first time, when `already_erased`).
    pub erased_at: DateTime<Utc>,
    /// The portfolios that received a `PersonalDataErased` event.
    #[schema(value_type = Vec<Uuid>)]
    pub portfolios: Vec<PortfolioId>,
    /// Uploads removed (`media_uploads` rows) and files deleted from the media directory.
    pub uploads_deleted: u32,
    pub files_deleted: u32,
    /// Nothing was left to erase: the student had been erased before and holds no new data.
    pub already_erased: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ErasureError {
    /// No portfolio of this student and no key: there is nothing of theirs.
    #[error("there is no data of this student")]
    NotFound,
    /// The reason names the student; it would be kept for good, so nothing is erased.
    #[error(
        "the reason contains the student's {}; it is kept for good after the erasure, so give a case reference instead of personal details",
        .0.what()
    )]
    ReasonPersonal(reason::Named),
    #[error("the student's portfolios kept changing during the erasure; try again")]
    Conflict,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot delete an uploaded file: {0}")]
    Media(#[source] std::io::Error),
}

impl From<sqlx::Error> for ErasureError {
    fn from(e: sqlx::Error) -> Self {
        ErasureError::Store(StoreError::Database(e))
    }
}

/// Erases the student's personal data. Safe to repeat: a second erasure with nothing new to erase
/// changes nothing and answers `already_erased`.
pub async fn erase(
    commands: &CommandHandler,
    media: &MediaStore,
    request: &ErasureRequest,
    ctx: &CommandContext,
) -> Result<ErasureOutcome, ErasureError> {
    let store = commands.store();
    let pool = store.pool();
    let subject = request.student_uid.as_uuid();
    let portfolios: Vec<Uuid> = sqlx::query_scalar!(
        r#"SELECT (payload->>'portfolio_id')::uuid AS "portfolio_id!" FROM events
         WHERE event_type = 'PortfolioOpened' AND payload->>'student_uid' = $1::uuid::text
         ORDER BY position"#,
        subject
    )
    .fetch_all(pool)
    .await?;
    let key: Option<(bool, Option<DateTime<Utc>>)> = sqlx::query!(
        r#"SELECT wrapped_key IS NULL AS "shredded!", erased_at
         FROM subject_keys WHERE data_subject = $1"#,
        subject
    )
    .fetch_optional(pool)
    .await?
    .map(|row| (row.shredded, row.erased_at));
    if portfolios.is_empty() && key.is_none() {
        return Err(ErasureError::NotFound);
    }
    // Both the route and `cim erase` come through here: checked before anything changes.
    for student in student_details(store, &portfolios).await? {
        if let Some(named) = reason::names_the_student(request.reason.as_str(), &student) {
            return Err(ErasureError::ReasonPersonal(named));
        }
    }
    // Counted over the attempts: a file deleted by an attempt that then conflicted is gone for good.
    let mut files_deleted = 0;
    for _ in 0..3 {
        let attempt = erase_in_transaction(
            store,
            media,
            request,
            ctx,
            &portfolios,
            key,
            &mut files_deleted,
        );
        match attempt.await {
            Err(ErasureError::Conflict) => continue,
            Ok(Erased::Before(erased_at)) => {
                return Ok(ErasureOutcome {
                    student_uid: request.student_uid,
                    erased_at,
                    portfolios: portfolios.into_iter().map(PortfolioId::new).collect(),
                    uploads_deleted: 0,
                    files_deleted: 0,
                    already_erased: true,
                });
            }
            Ok(Erased::Now { uploads_deleted }) => {
                // The handler's folds of these portfolios still hold what was just erased.
                for &portfolio in &portfolios {
                    commands.forget_portfolio(PortfolioId::new(portfolio));
                }
                return Ok(ErasureOutcome {
                    student_uid: request.student_uid,
                    // As stored: PostgreSQL keeps microseconds.
                    erased_at: ctx.now.trunc_subsecs(6),
                    portfolios: portfolios.into_iter().map(PortfolioId::new).collect(),
                    uploads_deleted,
                    files_deleted,
                    already_erased: false,
                });
            }
            Err(e) => return Err(e),
        }
    }
    Err(ErasureError::Conflict)
}

/// The student as each portfolio recorded them, as far as still readable (nothing once erased:
/// then there is nothing left that a reason could repeat): the opening's details, and again with
/// every number Ladok corrected the typed one to.
async fn student_details(
    store: &EventStore,
    portfolios: &[Uuid],
) -> Result<Vec<StudentDetails>, ErasureError> {
    let mut details = Vec::new();
    for &portfolio in portfolios {
        let events = store
            .read_stream(&PortfolioId::new(portfolio).stream_id(), 0)
            .await?;
        let mut opened: Option<StudentDetails> = None;
        for event in events {
            let Some(personal) = event.personal else {
                continue;
            };
            match event.event_type.as_str() {
                "PortfolioOpened" => opened = serde_json::from_value(personal).ok(),
                "IdentityCheckedInLadok" => {
                    if let (Some(student), Ok(ladok)) = (
                        opened.as_ref(),
                        serde_json::from_value::<LadokIdentityNumber>(personal),
                    ) {
                        details.push(StudentDetails {
                            identity_number: ladok.identity_number,
                            ..student.clone()
                        });
                    }
                }
                _ => {}
            }
        }
        details.extend(opened);
    }
    Ok(details)
}

/// What one attempt did.
enum Erased {
    /// Nothing to do: erased at this instant before, and nothing uploaded since.
    Before(DateTime<Utc>),
    Now {
        uploads_deleted: u32,
    },
}

async fn erase_in_transaction(
    store: &EventStore,
    media: &MediaStore,
    request: &ErasureRequest,
    ctx: &CommandContext,
    portfolios: &[Uuid],
    key: Option<(bool, Option<DateTime<Utc>>)>,
    files_deleted: &mut u32,
) -> Result<Erased, ErasureError> {
    let subject = request.student_uid.as_uuid();
    let mut tx = store.pool().begin().await?;
    // Held until commit: no upload of this student records a row (or a file) in between.
    uploads::lock_subject(&mut tx, request.student_uid).await?;
    let rows: Vec<(Uuid, String)> = sqlx::query!(
        "SELECT portfolio_id, sha256 FROM media_uploads WHERE portfolio_id = ANY($1)",
        portfolios
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|row| (row.portfolio_id, row.sha256))
    .collect();
    if let Some((true, Some(erased_at))) = key
        && rows.is_empty()
    {
        return Ok(Erased::Before(erased_at));
    }
    let hashes: Vec<String> = rows.iter().map(|(_, h)| h.clone()).collect();
    *files_deleted += uploads::delete_unreferenced(&mut tx, media, &hashes, portfolios)
        .await
        .map_err(|e| match e {
            UploadError::Database(e) => ErasureError::from(e),
            UploadError::Store(media::StoreError::Io(e)) => ErasureError::Media(e),
            UploadError::Store(other) => ErasureError::Media(std::io::Error::other(other)),
        })?;
    // The key goes; the row stays as the tombstone that tells "erased" from "lost".
    sqlx::query!(
        "INSERT INTO subject_keys (data_subject, wrapped_key, master_key_id, erased_at)
         VALUES ($1, NULL, NULL, $2)
         ON CONFLICT (data_subject) DO UPDATE
             SET wrapped_key = NULL, master_key_id = NULL, erased_at = EXCLUDED.erased_at",
        subject,
        ctx.now.trunc_subsecs(6),
    )
    .execute(&mut *tx)
    .await?;
    // Personal data stored in plaintext before sealing existed has no key to delete: clear it.
    sqlx::query!(
        "UPDATE events SET personal = NULL
         WHERE data_subject = $1 AND personal IS NOT NULL AND NOT (personal ? 'sealed')",
        subject,
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "DELETE FROM media_uploads WHERE portfolio_id = ANY($1)",
        portfolios
    )
    .execute(&mut *tx)
    .await?;
    // The keyed hash of their identity number (store::identity) goes too: it can be tested against
    // a guessed number by whoever holds the key, and the number is free for a later owner.
    sqlx::query!(
        "DELETE FROM identity_numbers WHERE student_uid = $1",
        subject
    )
    .execute(&mut *tx)
    .await?;
    // Signed-in console sessions hold their names (`console::session`): the student is signed out.
    sqlx::query!(
        "DELETE FROM console_sessions WHERE subject = $1::uuid::text",
        subject
    )
    .execute(&mut *tx)
    .await?;
    // Their notification choices go, and nothing still waiting in the outbox is sent to them
    // (`docs/notifications.md`): the outbox names a student by portfolio id, the address it would
    // go to is erased with the rest.
    sqlx::query!(
        "DELETE FROM notification_preferences WHERE subject = $1::uuid::text",
        subject
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE outbox SET state = 'cancelled', last_error = 'recipient_erased'
         WHERE recipient_kind = 'student' AND recipient = ANY($1::uuid[]::text[])
           AND state = 'pending'",
        portfolios
    )
    .execute(&mut *tx)
    .await?;
    for &portfolio in portfolios {
        // One command per portfolio stream; retried erasures (same command id) append once.
        let command_id = Uuid::new_v5(&ctx.command_id, portfolio.as_bytes());
        if store.command_outcome(command_id).await?.is_some() {
            continue;
        }
        let portfolio_id = PortfolioId::new(portfolio);
        let stream_id = portfolio_id.stream_id();
        let version = sqlx::query_scalar!(
            r#"SELECT COALESCE(max(version), 0) AS "version!" FROM events WHERE stream_id = $1"#,
            stream_id
        )
        .fetch_one(&mut *tx)
        .await?;
        let event = PortfolioEvent::from(PersonalDataErased {
            student_uid: request.student_uid,
            by: request.by.clone(),
            reason: request.reason.clone(),
            media_deleted: rows.iter().filter(|(p, _)| *p == portfolio).count() as u32,
        });
        let (event_type, payload) = event.to_payload();
        let new = encode(event_type, event.schema_version(), payload, None);
        let metadata = CommandContext {
            command_id,
            ..ctx.clone()
        }
        .metadata();
        match store
            .append_in(
                &mut tx,
                &stream_id,
                ExpectedVersion::Exact(version),
                &[new],
                &metadata,
            )
            .await
        {
            Ok(_) => {}
            Err(AppendError::Conflict { .. }) => return Err(ErasureError::Conflict),
            Err(AppendError::Store(e)) => return Err(e.into()),
            Err(AppendError::Empty) => unreachable!("one event is appended"),
        }
    }
    tx.commit().await?;
    store.announce();
    Ok(Erased::Now {
        uploads_deleted: rows.len() as u32,
    })
}
