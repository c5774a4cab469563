//! Which aggregate a stream id belongs to, by its prefix (streams are `<aggregate>-<uuid>`).

use crate::domain::{BatchId, PortfolioId, ProgramId};

/// What a stream id names, by its prefix (`store` streams are `<aggregate>-<uuid>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    Portfolio(PortfolioId),
    Program(ProgramId),
    Batch(BatchId),
    /// Anything else (tests' streams, streams added later).
    Other,
}

pub fn stream_kind(stream_id: &str) -> StreamKind {
    let Some((prefix, id)) = stream_id.split_once('-') else {
        return StreamKind::Other;
    };
    // "export-batch-<uuid>": the first dash is inside the prefix.
    let (prefix, id) = match (prefix, id.strip_prefix("batch-")) {
        ("export", Some(id)) => ("export-batch", id),
        _ => (prefix, id),
    };
    let Ok(uuid) = id.parse::<uuid::Uuid>() else {
        return StreamKind::Other;
    };
    match prefix {
        "portfolio" => StreamKind::Portfolio(PortfolioId::new(uuid)),
        "program" => StreamKind::Program(ProgramId::new(uuid)),
        "export-batch" => StreamKind::Batch(BatchId::new(uuid)),
        _ => StreamKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn stream_ids_are_classified_by_prefix() {
        let id = Uuid::from_u128(7);
        assert_eq!(
            stream_kind(&PortfolioId::new(id).stream_id()),
            StreamKind::Portfolio(PortfolioId::new(id))
        );
        assert_eq!(
            stream_kind(&ProgramId::new(id).stream_id()),
            StreamKind::Program(ProgramId::new(id))
        );
        assert_eq!(
            stream_kind(&BatchId::new(id).stream_id()),
            StreamKind::Batch(BatchId::new(id))
        );
        assert_eq!(stream_kind(&format!("batch-{id}")), StreamKind::Other);
        assert_eq!(stream_kind("portfolio-not-a-uuid"), StreamKind::Other);
        assert_eq!(stream_kind("portfolio"), StreamKind::Other);
    }
}
