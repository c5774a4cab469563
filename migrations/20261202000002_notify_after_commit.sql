-- Appends are no longer announced by a trigger inside the appending transaction.
--
-- `pg_notify` inside a transaction makes its commit take PostgreSQL's cluster-wide notification lock
-- and hold it across the WAL flush, so every appending transaction committed on its own: no group
-- commit, and the store's append rate fell to a tenth of plain inserts at 8 and 32 writers (measured
-- by `cim bench`). The appending process now sends the notification after its commit, coalesced
-- (src/store/announce.rs). Consumers poll as well, so the channel stays a hint, as it always was.
DROP TRIGGER events_notify ON events;
DROP FUNCTION notify_event_appended();
