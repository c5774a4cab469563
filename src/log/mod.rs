//! The log's vocabulary: what the events of each kind of stream are as stored, and how they are read
//! back. Everything that reads the log (the command handler, the projections, the export worker)
//! decodes through here, so an event type, its payload codec and its upcasters live in one place.
//!
//! - [`codec`]: domain events to stored events and back; the personal part of a payload goes to its
//!   own column, tied to the person it belongs to.
//! - [`upcasters`]: the steps that read older shapes of an event type as the current one (the store
//!   applies them on every read).
//! - [`fold_cache`]: streams folded up to a version, so a state is not folded twice.
//! - [`StreamKind`]: which aggregate a stream id belongs to.
//!
//! It sits above `domain` (whose event types it names) and `store` (whose stored shapes it fills),
//! and below everything else.

pub mod codec;
pub mod fold_cache;
pub mod streams;

pub use codec::{decode_batch, decode_portfolio, decode_program, encode, encode_batch, upcasters};
pub use fold_cache::FoldCache;
pub use streams::{StreamKind, stream_kind};
