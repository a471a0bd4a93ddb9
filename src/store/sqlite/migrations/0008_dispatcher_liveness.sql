-- PostgreSQL's 0008 registers live dispatchers so that other processes can return a dead one's leases at once. An
-- SQLite file has one process, which returns every lease when it starts: nothing to store here. The number is kept so
-- that both dialects' migrations stay version for version.
SELECT 1;
