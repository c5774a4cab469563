//! Open Badges 3.0 credentials (`OpenBadgeCredential`, a W3C Verifiable Credential) of approved
//! certificates, issue #22. The JSON-LD contexts they name are compiled in (`contexts/`): nothing
//! here ever fetches a document from the network.
pub mod verify;
