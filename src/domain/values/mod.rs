//! Validated values: the constructor is the only way to get one, so holding one is proof it was checked.

pub mod email;
pub mod identity_number;
pub mod measures;
pub mod media;
pub mod recording;
pub mod text;

pub use email::{Email, EmailError};
pub use identity_number::{IdentityNumber, IdentityNumberError};
pub use measures::{
    EnglishCheck, InstagramLinkError, InstagramPostKind, InstagramPostLink,
    RELIABLE_LANGUAGE_CONFIDENCE, detect_language, is_english, language_name, word_count,
};
pub use media::{MediaRef, MediaRefError};
pub use recording::{RecordingKind, VideoLink, VideoLinkError};
pub use text::{NonEmptyText, PersonName, TextError};
