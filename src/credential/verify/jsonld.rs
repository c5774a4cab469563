//! JSON-LD to canonical N-Quads (RDF Dataset Canonicalization, RDFC-1.0), with the two contexts an
//! OB 3.0 credential names compiled in and every other context refused: a verifier that fetched
//! contexts would let whoever serves them change what a signature covers, and would need a network.
//!
//! JSON-LD to RDF is `sophia_jsonld` (over the `json-ld` crate, built without its HTTP loader, so
//! it cannot fetch anything); canonicalization is `sophia_c14n`'s RDFC-1.0 with SHA-256, whose
//! limits on blank-node permutations refuse a graph built to make it run for ever.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock};

use locspan::{Location, Span};
use serde_json::Value;
use sophia_api::quad::Spog;
use sophia_api::source::QuadSource;
use sophia_api::term::SimpleTerm;
use sophia_iri::Iri;
use sophia_jsonld::json_ld::RemoteDocument;
use sophia_jsonld::json_ld::syntax::{Parse, Value as JsonLdValue};
use sophia_jsonld::loader::StaticLoader;
use sophia_jsonld::vocabulary::ArcIri;
use sophia_jsonld::{JsonLdOptions, JsonLdParser};

use super::VerifyError;

/// The contexts compiled in, by the URL credentials name them with (`../contexts/README.md`).
pub(super) const LOCAL_CONTEXTS: [(&str, &str); 2] = [
    (
        "https://www.w3.org/ns/credentials/v2",
        include_str!("../contexts/credentials-v2.jsonld"),
    ),
    (
        "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json",
        include_str!("../contexts/ob-v3p0-context-3.0.3.json"),
    ),
];

/// The document loader: the local contexts, parsed once; any other URL is an error.
static LOADER: LazyLock<StaticLoader<ArcIri, Span>> = LazyLock::new(|| {
    LOCAL_CONTEXTS
        .iter()
        .fold(StaticLoader::new(), |loader, (url, text)| {
            let iri = Iri::new_unchecked(Arc::<str>::from(*url));
            // Compiled-in files, checked by the tests: a parse failure is a build defect.
            let json = JsonLdValue::parse_str(text, |span| Location::new(iri.clone(), span))
                .expect("a compiled-in JSON-LD context parses");
            loader.with(iri, json)
        })
});

/// The canonical N-Quads of a JSON-LD document: every quad on its own line, sorted, blank nodes
/// relabelled canonically. Refuses a document naming a context that is not compiled in.
pub(super) fn canonical_nquads(document: &Value) -> Result<String, VerifyError> {
    refuse_remote_contexts(document)?;
    let dataset = to_rdf(document)?;
    let mut nquads = Vec::new();
    sophia_c14n::rdfc10::normalize(&dataset, &mut nquads)
        .map_err(|error| VerifyError::Canonicalization(error.to_string()))?;
    String::from_utf8(nquads).map_err(|error| VerifyError::Canonicalization(error.to_string()))
}

fn to_rdf(document: &Value) -> Result<HashSet<Spog<SimpleTerm<'static>>>, VerifyError> {
    let source_iri = Iri::new_unchecked(Arc::<str>::from("urn:cim:credential"));
    let text = document.to_string();
    let json = JsonLdValue::parse_str(&text, |span| Location::new(source_iri.clone(), span))
        .map_err(|error| VerifyError::JsonLd(error.to_string()))?;
    // No document URL: relative IRIs stay unresolved (and are dropped), as in other processors
    // given a credential without a base.
    let remote = RemoteDocument::new(None, None, json);
    let options = JsonLdOptions::new().with_document_loader(LOADER.clone());
    let parser = JsonLdParser::new_with_options(options);
    // The loader answers from memory, so the future never waits: polling it here needs no
    // runtime (and works inside one, unlike sophia's own `parse_str`, which builds a runtime).
    let quads = futures::executor::block_on(parser.parse_json(&remote));
    quads
        .collect_quads()
        .map_err(|error| VerifyError::JsonLd(error.to_string()))
}

/// Names the first context URL (in `@context` or `@import`, at any depth) that is not compiled in.
/// The loader would refuse it too; this says which, as a typed error, before any processing.
fn refuse_remote_contexts(value: &Value) -> Result<(), VerifyError> {
    match value {
        Value::Array(items) => items.iter().try_for_each(refuse_remote_contexts),
        Value::Object(object) => object
            .iter()
            .try_for_each(|(key, value)| match key.as_str() {
                "@context" | "@import" => check_context(value),
                _ => refuse_remote_contexts(value),
            }),
        _ => Ok(()),
    }
}

fn check_context(context: &Value) -> Result<(), VerifyError> {
    match context {
        Value::String(url) if LOCAL_CONTEXTS.iter().any(|(local, _)| local == url) => Ok(()),
        Value::String(url) => Err(VerifyError::ContextNotLocal(url.clone())),
        Value::Array(items) => items.iter().try_for_each(check_context),
        other => refuse_remote_contexts(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_compiled_in_contexts_are_the_shared_copies_byte_for_byte() {
        let shared = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/formats/openbadges/contexts/"
        );
        for ((_, text), file) in LOCAL_CONTEXTS
            .iter()
            .zip(["credentials-v2.jsonld", "ob-v3p0-context-3.0.3.json"])
        {
            let copy = std::fs::read_to_string(format!("{shared}{file}"))
                .expect("shared/ beside the checkout");
            assert_eq!(*text, copy, "{file}");
        }
    }

    #[test]
    fn a_context_that_is_not_compiled_in_is_refused_at_any_depth() {
        let remote = "https://evil.example/context.json";
        for document in [
            json!({"@context": remote, "name": "x"}),
            json!({"@context": ["https://www.w3.org/ns/credentials/v2", remote]}),
            json!({"@context": ["https://www.w3.org/ns/credentials/v2"], "a": {"@context": {"@import": remote}}}),
        ] {
            match canonical_nquads(&document) {
                Err(VerifyError::ContextNotLocal(url)) => assert_eq!(url, remote),
                other => panic!("expected a refusal, got {other:?}"),
            }
        }
    }

    #[test]
    fn the_loader_itself_knows_only_the_local_contexts() {
        // Below the scan: the JSON-LD processor asks the loader, which has nothing else to give.
        let remote = "https://evil.example/context.json";
        match to_rdf(&json!({"@context": remote, "@id": "urn:x", "name": "x"})) {
            Err(VerifyError::JsonLd(message)) => assert!(message.contains(remote), "{message}"),
            other => panic!("expected the loader to refuse, got {other:?}"),
        }
    }

    #[test]
    fn canonical_form_of_a_small_credential() {
        let document = json!({
            "@context": ["https://www.w3.org/ns/credentials/v2"],
            "id": "urn:uuid:1", "type": ["VerifiableCredential"],
            "issuer": "https://u.example/i", "validFrom": "2025-06-01T00:00:00Z"
        });
        let nquads = canonical_nquads(&document).unwrap();
        assert!(nquads.contains(
            "<urn:uuid:1> <https://www.w3.org/2018/credentials#issuer> <https://u.example/i> .\n"
        ), "{nquads}");
        assert!(
            nquads
                .contains("\"2025-06-01T00:00:00Z\"^^<http://www.w3.org/2001/XMLSchema#dateTime>"),
            "{nquads}"
        );
    }
}
