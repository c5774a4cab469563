-- Coordinator access comes from the program's own stream (src/http/auth/assignments.rs): on every
-- request of a coordinator, the programs whose stream assigns them now are read from the log. This
-- partial expression index makes that one index scan over the assignment events of one staff id,
-- however long the log grows; no table of its own, so nothing can drift from the log.
CREATE INDEX events_coordinator_assignments_idx
    ON events ((payload->>'staff'), stream_id, version)
    WHERE event_type IN ('CoordinatorAssigned', 'CoordinatorUnassigned');
