-- An attempt's id begins with its start time (`newId('atmpt', startedAt)` since the first version), so an id range is a
-- start-time range: retention and the overview's attempt counts walk the primary key's index by id instead of an index
-- on started_at, and every recorded attempt writes one b-tree fewer (the SQLite schema did the same in its 0019).
DROP INDEX attempt_started;
