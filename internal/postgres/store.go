package postgres

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/natter-chat/natter/internal/chat"
)

var _ chat.Store = (*Store)(nil)

// Options tune a Store. The zero value is ready to use.
type Options struct {
	Schema   string // the schema holding Natter's tables, created by Open if absent; zero means "public"
	MaxConns int32  // connections in the pool; zero means the URL's pool_max_conns, else pgxpool's default (max(4, CPUs))
	// TxIdleTimeout is how long the server lets a transaction of this
	// store wait for its next statement before ending the session
	// (idle_in_transaction_session_timeout). A node that hangs or loses
	// the network mid-transaction holds its row locks, the positions row
	// among them, until then; every node's writes wait. Zero means 5s.
	TxIdleTimeout time.Duration
	Now           func() time.Time // stamps applied migrations and departed members; nil means time.Now
}

// Store is a chat.Store on a PostgreSQL database. Several Stores, in one
// process or on many nodes, may share one database and schema. A Store is
// safe for concurrent use.
type Store struct {
	pool   *pgxpool.Pool
	latest int64            // the newest migration's version, which Ping checks
	now    func() time.Time // Options.Now
}

// Open connects to the database at url (a postgres:// URL or key=value
// DSN), applies the migrations the schema lacks and checks that commits are
// synchronous. Nodes may Open the same schema at once: the migrations run
// under an advisory lock, once. Open fails when the schema was migrated by
// a newer Natter than this one. The caller must Close the Store.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	if opts.Schema == "" {
		opts.Schema = "public"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.TxIdleTimeout <= 0 {
		opts.TxIdleTimeout = 5 * time.Second
	}
	migrations, err := loadMigrations()
	if err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// The URL may hold a password: name neither it nor the parse error's text.
		return nil, fmt.Errorf("postgres: open: the database URL cannot be parsed")
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	params := cfg.ConnConfig.RuntimeParams
	params["search_path"] = pgx.Identifier{opts.Schema}.Sanitize()
	// The default, set explicitly: a server or role configured for
	// asynchronous commit would otherwise acknowledge sends it can lose.
	params["synchronous_commit"] = "on"
	// Plan every execution for its arguments and the tables' current
	// size. pgx prepares each statement once per connection, and
	// PostgreSQL would otherwise settle on a generic plan after five runs:
	// one made while a table was small (a hash join over a sequential scan
	// of messages, say) stays cached as the table grows until an ANALYZE
	// invalidates it, and with autovacuum off, never. Planning these
	// statements costs tens of microseconds.
	params["plan_cache_mode"] = "force_custom_plan"
	params["idle_in_transaction_session_timeout"] = strconv.FormatInt(max(opts.TxIdleTimeout.Milliseconds(), 1), 10)
	if params["application_name"] == "" {
		params["application_name"] = "natter"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	s := &Store{pool: pool, latest: migrations[len(migrations)-1].version, now: opts.Now}
	if err := migrate(ctx, pool, opts.Schema, migrations, opts.Now); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: open schema %s: %w", opts.Schema, err)
	}
	if err := checkDurability(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	return s, nil
}

// checkDurability verifies that commits wait for the WAL flush: the store
// acknowledges a write only after its commit returns, which means "on disk"
// only with synchronous_commit on (or remote_write/remote_apply, which wait
// for more).
func checkDurability(ctx context.Context, pool *pgxpool.Pool) error {
	var mode string
	if err := pool.QueryRow(ctx, `SELECT current_setting('synchronous_commit')`).Scan(&mode); err != nil {
		return err
	}
	switch mode {
	case "on", "remote_write", "remote_apply":
		return nil
	}
	return fmt.Errorf("synchronous_commit is %q, want on", mode)
}

// Close closes the pool, waiting for connections in use to be returned.
// It is safe to call once.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// Ping reports whether the database is reachable and the latest migration
// applied. Every failure is CodeUnavailable.
func (s *Store) Ping(ctx context.Context) error {
	const op = "postgres.Ping"
	var version *int64
	if err := s.pool.QueryRow(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&version); err != nil {
		return chat.Unavailable(op, err)
	}
	if version == nil || *version < s.latest {
		got := int64(0)
		if version != nil {
			got = *version
		}
		return chat.Unavailable(op, fmt.Errorf("schema at version %d, want %d", got, s.latest))
	}
	return nil
}

// ms truncates t to the millisecond, the resolution the store keeps, so
// that what a write returns equals what a later read returns.
func ms(t time.Time) time.Time { return t.Truncate(time.Millisecond).UTC() }

// nullTime stores the zero time as NULL.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	v := ms(t)
	return &v
}

// fromNull converts a nullable stored time; NULL is the zero time.
func fromNull(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// int64s converts typed ids to the form pgx binds as bigint[].
func int64s[ID ~int64](ids []ID) []int64 {
	out := make([]int64, len(ids))
	for i, id := range ids {
		out[i] = int64(id)
	}
	return out
}

// ids converts a bigint[] back to typed ids; empty is nil.
func ids[ID ~int64](vs []int64) []ID {
	if len(vs) == 0 {
		return nil
	}
	out := make([]ID, len(vs))
	for i, v := range vs {
		out[i] = ID(v)
	}
	return out
}

// SigningKey returns the cluster's token signing key: candidate if no key
// was stored yet (it is stored, once, by whichever node gets there first),
// else the stored one. Every node of a cluster thus signs and verifies
// with the same key. Errors are CodeUnavailable.
func (s *Store) SigningKey(ctx context.Context, candidate []byte) ([]byte, error) {
	const op = "postgres.SigningKey"
	if _, err := s.pool.Exec(ctx, `INSERT INTO signing_key (id, private_key, created_at) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING`,
		candidate, s.now().UTC().Truncate(time.Millisecond)); err != nil {
		return nil, chat.Unavailable(op, err)
	}
	var key []byte
	if err := s.pool.QueryRow(ctx, `SELECT private_key FROM signing_key WHERE id = 1`).Scan(&key); err != nil {
		return nil, chat.Unavailable(op, err)
	}
	return key, nil
}
