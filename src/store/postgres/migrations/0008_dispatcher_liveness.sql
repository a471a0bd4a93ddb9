-- Dispatchers (lease owners) that are alive: each holds a session advisory lock on its lock_key while it runs, so a
-- process that died is seen within a second and its leases are returned at once (src/store/postgres/liveness.ts).
CREATE TABLE dispatcher (
  owner         text COLLATE "C" PRIMARY KEY,
  lock_key      bigint NOT NULL,
  registered_at bigint NOT NULL
);
