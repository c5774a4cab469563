//! Open Badges 3.0 credentials of approved certificates (`docs/credentials.md`): the issuer and its
//! key ([`issuer`]), the credential ([`badge`]), the status list that revokes it ([`status`]), and
//! issuing and verifying them ([`service`]).

pub mod badge;
pub mod issuer;
pub mod service;
pub mod status;
