// Package sqlite implements chat.Store on an embedded SQLite database
// (modernc.org/sqlite, pure Go), for Natter's single-node mode.
//
// Invariants. A call that writes returns only after its transaction is
// durable: the database runs in WAL mode with synchronous=FULL, so every
// commit is fsynced before it is acknowledged. All writes go through ONE
// connection (SQLite allows one writer anyway; queueing in database/sql is
// cheaper than SQLITE_BUSY retries), and every write transaction begins
// IMMEDIATE; reads use a separate pool of query_only connections and see
// the last committed state. A message's seq is assigned inside the
// transaction that stores it, from its conversation's last_seq, so seqs are
// gap-free and commit in seq order; AppendMessages stores a whole batch in
// one transaction (the group commit) and stores nothing when it fails.
// Every write that changes something takes change positions from the
// one-row positions table inside its own transaction, so positions are
// unique and increase in commit order; a row's pos column is the position
// of its latest change, ended memberships are kept in departed_members for
// the sync stream, and a deleted message keeps only its tombstone.
// Idempotency and one-direct-conversation-per-pair are UNIQUE constraints,
// not checks done before writing. Times are stored as unix milliseconds and
// returned in UTC; ids are chosen by the caller and never generated here.
//
// Errors are classified once, here: constraint violations and absent rows
// become the fitting chat.Code, and every driver or I/O failure becomes
// chat.CodeUnavailable with the cause kept for logs only. Schema migrations
// are SQL files embedded from migrations/ and applied in order by Open.
package sqlite
