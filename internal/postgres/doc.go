// Package postgres implements chat.Store on PostgreSQL (15 or later, through
// pgx), for cluster mode: any number of Natter nodes share one database.
//
// Invariants. A call that writes returns only after its transaction has
// committed with synchronous_commit on, set on every connection, so an
// acknowledged write is on disk. Every write runs in one READ COMMITTED
// transaction, retried whole on a deadlock or serialization failure. A
// message's seq is assigned inside the transaction that stores it, under
// its conversation's row lock (SELECT ... FOR NO KEY UPDATE, taken in id
// order when a batch spans several conversations), so seqs are gap-free and
// commit in seq order however many nodes send at once; AppendMessages
// stores a whole batch in one transaction with set-based statements (the
// group commit) and stores nothing when it fails. Idempotency and
// one-direct-conversation-per-pair are UNIQUE constraints; a retry sent to
// two nodes at once meets the conversation lock and then the stored
// original. The conversation's row lock also serializes its membership and
// title changes, so "a conversation always has an owner" holds across
// nodes; a message's row lock serializes its edits and reactions, and a
// membership's row lock its receipts. Times are timestamptz truncated to
// the millisecond and returned in UTC; ids are chosen by the caller.
//
// Change positions come from one counter, the one-row positions table,
// advanced by UPDATE ... RETURNING inside each write transaction that
// changes something. The row lock is held until commit, and PostgreSQL
// makes a commit visible before it releases its locks, so positions become
// visible strictly in increasing order and a rollback gives its positions
// back: every snapshot holds all positions up to its newest and none after.
// That is what makes a sync cursor safe. A bigserial or a timestamp would
// not be: they are visible in commit order, not number order, and a reader
// that saw 105 could later see 104 commit and skip it forever.
//
// The price is that writes that change something are serialized, cluster
// wide, from the moment they take their positions to the end of their
// commit: the write ceiling is about one commit (one WAL flush) at a time,
// times the rows per commit. Two rules keep that window short and
// deadlock-free. Positions are the last lock a transaction takes: it first
// locks every row it will change (conversation, message or membership), so
// a transaction holding the positions row never waits for another lock.
// And the statements after it are few, usually one: AppendMessages takes
// its positions, inserts its messages and advances last_seq in a single
// statement. A node that hangs mid-transaction would stall every node's
// writes; idle_in_transaction_session_timeout (Options.TxIdleTimeout) ends
// its session, and so its locks, within seconds. The alternatives, holding
// sync cursors back to the oldest in-flight transaction (pg_snapshot_xmin)
// or deriving positions from logical decoding, scale writes further at the
// cost of more moving parts; with group commit a batch of 64 sends costs
// one positions update either way. The positions row (and a busy
// conversation's row) is updated by every write: a long-running
// transaction anywhere in the database keeps its dead versions from being
// pruned and slows every write down.
//
// Errors are classified once, here: constraint violations and absent rows
// become the fitting chat.Code (a taken username CodeUsernameTaken), a
// statement the server cannot run (a bug) CodeInternal, and every other
// failure (connection, I/O, timeouts, shutdown) chat.CodeUnavailable, with
// the cause kept for logs only: users never see SQL text. A write that
// fails as unavailable after its COMMIT was sent may have committed: a
// retry with the same client id is safe, and finds it.
//
// Schema migrations are SQL files embedded from migrations/, applied by
// Open in one transaction under an advisory lock per schema, so nodes that
// start at once apply each exactly once; schema_migrations records them.
package postgres
