//! Open Badges 3.0 credentials (`OpenBadgeCredential`, a W3C Verifiable Credential) of approved
//! certificates (`docs/credentials.md`): the issuer and its key ([`issuer`]), the credential
//! ([`badge`]), the status list that revokes it ([`status`]), issuing and verifying this service's
//! credentials ([`service`]), verifying anyone's, 1EdTech's examples among them ([`verify`]), and
//! the printable certificate ([`pdf`]). The JSON-LD contexts they name are compiled in
//! (`contexts/`): nothing here ever fetches a document from the network.

pub mod badge;
pub mod issuer;
pub mod pdf;
pub mod service;
pub mod status;
pub mod verify;
