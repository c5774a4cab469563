//! Personal data at rest: every event's `personal` part is sealed with a key of its own data subject
//! (crypto-shredding), and every subject key is wrapped by one master key.
//!
//! - [`cipher`]: the keys and the authenticated cipher (XChaCha20-Poly1305, RustCrypto's
//!   `chacha20poly1305`); pure, no I/O.
//! - [`master`]: where the master key comes from (`CIM_MASTER_KEY`, `CIM_MASTER_KEY_FILE`, or a file
//!   generated in the data dir on first start) and the process's installed key.
//!
//! The database side (the `subject_keys` table, sealing on append, opening on read, erasure and
//! rotation) is `store::keys`. Keys never reach a log: their `Debug` shows the master key's id only.

pub mod cipher;
pub mod master;

pub use cipher::{CryptoError, DataKey, MasterKey, is_sealed};
pub use master::{MasterKeyError, MasterKeySettings, MasterKeySource, install, installed};
