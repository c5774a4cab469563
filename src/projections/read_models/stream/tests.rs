use super::*;
use uuid::Uuid;

#[test]
fn stream_ids_are_classified_by_prefix() {
    let id = Uuid::from_u128(7);
    assert_eq!(
        stream_kind(&format!("portfolio-{id}")),
        StreamKind::Portfolio(PortfolioId::new(id))
    );
    assert_eq!(
        stream_kind(&format!("program-{id}")),
        StreamKind::Program(ProgramId::new(id))
    );
    assert_eq!(stream_kind(&format!("batch-{id}")), StreamKind::Other);
    assert_eq!(stream_kind("portfolio-not-a-uuid"), StreamKind::Other);
}

#[test]
fn a_cached_fold_is_only_handed_out_for_the_version_it_holds() {
    let cache = FoldCache::new(10);
    cache.put("s", 3, "after 3");
    // A rebuild from the start, or an event applied before the one cached: a miss.
    assert_eq!(cache.take("s", 2), None);
    assert_eq!(cache.take("s", 4), None);
    assert_eq!(cache.take("other", 3), None);
    // The miss left the entry alone; the hit takes it out.
    assert_eq!(cache.take("s", 3), Some("after 3"));
    assert_eq!(cache.take("s", 3), None);
    // A later put replaces whatever version was there, also a higher one.
    cache.put("s", 7, "after 7");
    cache.put("s", 4, "after 4");
    assert_eq!(cache.take("s", 7), None);
    assert_eq!(cache.get("s", 4), Some("after 4"));
    assert_eq!(cache.get("s", 4), Some("after 4"), "get leaves it cached");
}

#[test]
fn the_cache_is_bounded_and_keeps_the_streams_in_use() {
    let cache = FoldCache::new(4);
    for i in 0..100 {
        cache.put("hot", i, i);
        cache.put(&format!("cold-{i}"), 1, i);
        assert!(cache.len() <= 4, "{} entries", cache.len());
        assert_eq!(cache.take("hot", i), Some(i));
    }
    // An entry of the old generation is still found, and moves to the current one on `get`.
    let cache = FoldCache::new(4);
    cache.put("a", 1, 'a');
    cache.put("b", 1, 'b');
    cache.put("c", 1, 'c');
    assert_eq!(cache.get("a", 1), Some('a'));
    cache.put("d", 1, 'd');
    cache.put("e", 1, 'e');
    assert_eq!(cache.get("a", 1), Some('a'));
    assert_eq!(cache.take("b", 1), None, "dropped with its generation");
}
