//! A person's notification choices (`notification_preferences`), keyed by their subject: the
//! language of their messages, whether coordinators get the daily digest, and a staff member's
//! address. A student's address is always their portfolio's, so a student never stores one here.
//! An erasure deletes the student's row (`app::erasure`).

use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use super::templates::Language;

/// What a person chose; absent fields are the service's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Preferences {
    /// `sv` or `en`; none: the service's default language.
    pub language: Option<String>,
    /// Whether a coordinator gets the daily digest.
    pub digests: bool,
    /// A staff member's address for messages (from their sign-in, or set here).
    pub email: Option<String>,
}

pub async fn get(pool: &PgPool, subject: &str) -> Result<Preferences, sqlx::Error> {
    let row = sqlx::query!(
        "SELECT language, digests, email FROM notification_preferences WHERE subject = $1",
        subject
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map_or(
        Preferences {
            digests: true,
            ..Preferences::default()
        },
        |r| Preferences {
            language: r.language,
            digests: r.digests,
            email: r.email,
        },
    ))
}

/// Stores a person's choices (the API's PUT): the language and the digests always; the address
/// only when `email` is given, which makes it theirs (a token's claim no longer replaces it).
pub async fn set(
    pool: &PgPool,
    subject: &str,
    language: Option<&str>,
    digests: bool,
    email: Option<&str>,
) -> Result<Preferences, sqlx::Error> {
    if let Some(code) = language {
        debug_assert!(Language::parse(code).is_some(), "checked by the caller");
    }
    let row = sqlx::query!(
        "INSERT INTO notification_preferences
             (subject, language, digests, email, email_set_by_person, updated_at)
         VALUES ($1, $2, $3, $4::text, $4::text IS NOT NULL, now())
         ON CONFLICT (subject) DO UPDATE
             SET language = EXCLUDED.language, digests = EXCLUDED.digests,
                 email = COALESCE($4::text, notification_preferences.email),
                 email_set_by_person = notification_preferences.email_set_by_person OR $4::text IS NOT NULL,
                 updated_at = now()
         RETURNING language, digests, email",
        subject,
        language,
        digests,
        email,
    )
    .fetch_one(pool)
    .await?;
    Ok(Preferences {
        language: row.language,
        digests: row.digests,
        email: row.email,
    })
}

/// A staff member's address from their token: recorded when there is none, and replaced when the
/// claim changes, unless they set one themselves. So a coordinator who never opened the settings
/// gets their digest at the address their university has for them.
pub async fn remember_staff_address(
    pool: &PgPool,
    subject: &str,
    email: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO notification_preferences (subject, email) VALUES ($1, $2)
         ON CONFLICT (subject) DO UPDATE SET email = EXCLUDED.email, updated_at = now()
         WHERE NOT notification_preferences.email_set_by_person
           AND notification_preferences.email IS DISTINCT FROM EXCLUDED.email",
        subject,
        email,
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// The staff addresses a process has recorded, by subject: a token's address is written when it
/// is new to this process, not on every request.
#[derive(Debug, Default)]
pub struct Remembered(std::sync::Mutex<std::collections::HashMap<String, String>>);

impl Remembered {
    /// Records `email` for `subject` unless this process did already. A failure is logged (without
    /// the address) and tried again on the next request: it never fails the request.
    pub async fn remember(&self, pool: &PgPool, subject: &str, email: &str) {
        let known = |map: &std::collections::HashMap<String, String>| {
            map.get(subject).is_some_and(|e| e == email)
        };
        if known(&self.0.lock().expect("not poisoned")) {
            return;
        }
        match remember_staff_address(pool, subject, email).await {
            Ok(()) => {
                self.0
                    .lock()
                    .expect("not poisoned")
                    .insert(subject.to_owned(), email.to_owned());
            }
            Err(e) => tracing::warn!(error = %e, "could not record a staff address"),
        }
    }
}
