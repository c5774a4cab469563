//! What a student carries away once a certificate is approved: the printable certificate ([`pdf`]).
pub mod pdf;
