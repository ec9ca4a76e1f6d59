package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/natter-chat/natter/internal/chat"
)

var _ chat.Store = (*Store)(nil)

// Options tune a Store. The zero value is ready to use.
type Options struct {
	ReadConns   int              // connections in the read pool; zero means 4
	BusyTimeout time.Duration    // how long to wait for a lock another process holds; zero means 5s
	Now         func() time.Time // stamps applied migrations and departed members; nil means time.Now
}

// Store is a chat.Store on one SQLite database file. It is safe for
// concurrent use.
type Store struct {
	w *sql.DB // the one writer connection; transactions begin IMMEDIATE
	r *sql.DB // the query_only read pool

	// Prepared once on the writer connection and bound to each
	// AppendMessages transaction with Tx.StmtContext, which reuses them.
	insertMessage *sql.Stmt
	bumpSeq       *sql.Stmt
	findMessage   *sql.Stmt
	readPos       *sql.Stmt
	savePos       *sql.Stmt
	takePos       *sql.Stmt

	batchMu sync.Mutex
	batches map[int]*batchStatements // by chunk size; guarded by batchMu

	latest int64            // the newest migration's version, which Ping checks
	now    func() time.Time // Options.Now
}

// Open opens the database at path, creating the file if it is absent, and
// applies the migrations it lacks. It fails when the database was migrated
// by a newer Natter than this one. The caller must Close the Store.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	if opts.ReadConns <= 0 {
		opts.ReadConns = 4
	}
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = 5 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	migrations, err := loadMigrations()
	if err != nil {
		return nil, err
	}

	name := "file:" + uriEscape(path)
	busy := "_pragma=busy_timeout(" + strconv.FormatInt(opts.BusyTimeout.Milliseconds(), 10) + ")"
	writer := name + "?" + busy +
		"&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)&_pragma=cache_size(-65536)&_pragma=wal_autocheckpoint(16384)&_txlock=immediate"
	// Migrations go first, on a connection of their own: it switches the
	// file to WAL, which the other connections then find already set.
	if err := migrateFile(ctx, writer, migrations, opts.Now); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// The writer keeps statement journals in memory (temp_store): a
	// multi-row insert of a group commit may fail halfway, so SQLite saves
	// every page it changes to a statement journal, which otherwise spills
	// to a temporary file, one write per page, past 64 KiB; 64 messages in
	// 64 conversations change about 250 pages. Every statement the writer
	// runs changes a bounded number of rows. A migration may rewrite a
	// whole table in one statement: migrations run without it.
	w, err := sql.Open("sqlite", writer+"&_pragma=temp_store(MEMORY)")
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	w.SetConnMaxLifetime(0)

	s := &Store{w: w, latest: migrations[len(migrations)-1].version, now: opts.Now, batches: map[int]*batchStatements{}}
	if err := checkDurability(ctx, w); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if err := s.prepare(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}

	r, err := sql.Open("sqlite", name+"?"+busy+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	r.SetMaxOpenConns(opts.ReadConns)
	r.SetMaxIdleConns(opts.ReadConns)
	s.r = r
	if err := r.PingContext(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	return s, nil
}

// migrateFile applies migrations to the database named by dsn on a
// connection that it closes before returning.
func migrateFile(ctx context.Context, dsn string, migrations []migration, now func() time.Time) error {
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return err
	}
	db.SetMaxOpenConns(1)
	if err := migrate(ctx, db, migrations, now); err != nil {
		db.Close()
		return err
	}
	return db.Close()
}

// checkDurability verifies that the writer connection really runs in WAL
// mode with synchronous=FULL and foreign keys on: SQLite ignores a
// journal_mode it cannot set rather than failing, and the package's
// guarantees rest on these settings.
func checkDurability(ctx context.Context, w *sql.DB) error {
	var mode string
	var sync, fk int
	err := w.QueryRowContext(ctx, `SELECT journal_mode, synchronous, foreign_keys
		FROM pragma_journal_mode, pragma_synchronous, pragma_foreign_keys`).Scan(&mode, &sync, &fk)
	if err != nil {
		return err
	}
	if !strings.EqualFold(mode, "wal") || sync != 2 || fk != 1 {
		return fmt.Errorf("journal_mode=%s synchronous=%d foreign_keys=%d, want wal, 2 (FULL) and 1", mode, sync, fk)
	}
	return nil
}

// uriEscape escapes the characters that would end or alter the path part of
// an SQLite URI filename.
func uriEscape(path string) string {
	return strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
}

// Close closes both connection pools. It is safe to call once.
func (s *Store) Close() error {
	var errs []error
	for _, st := range []*sql.Stmt{s.insertMessage, s.bumpSeq, s.findMessage, s.readPos, s.savePos, s.takePos} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	s.batchMu.Lock()
	for _, st := range s.batches {
		errs = append(errs, st.close())
	}
	s.batchMu.Unlock()
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	errs = append(errs, s.w.Close())
	return errors.Join(errs...)
}

// Ping reports whether both pools reach the database and the latest
// migration is applied. Every failure is CodeUnavailable.
func (s *Store) Ping(ctx context.Context) error {
	const op = "sqlite.Ping"
	if err := s.w.PingContext(ctx); err != nil {
		return chat.Unavailable(op, err)
	}
	var version sql.NullInt64
	if err := s.r.QueryRowContext(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&version); err != nil {
		return chat.Unavailable(op, err)
	}
	if version.Int64 < s.latest {
		return chat.Unavailable(op, fmt.Errorf("schema at version %d, want %d", version.Int64, s.latest))
	}
	return nil
}

// newError returns an *Error for a failure a user can cause. msg is shown to
// users, so it never carries SQL or driver text.
func newError(op string, code chat.Code, msg string) error {
	return &chat.Error{Code: code, Message: msg, Op: op}
}

// resultCode returns the extended SQLite result code of a driver error, or 0
// for any other error.
func resultCode(err error) int {
	if e, ok := errors.AsType[*sqlite.Error](err); ok {
		return e.Code()
	}
	return 0
}

// Extended result codes of the constraint violations the store classifies.
const (
	violatesUnique     = sqlite3.SQLITE_CONSTRAINT_UNIQUE
	violatesPrimaryKey = sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	violatesForeignKey = sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
	violatesCheck      = sqlite3.SQLITE_CONSTRAINT_CHECK
)

// classify turns err from a write into the store's contract: the constraint
// violations a caller can cause get a code, anything else is unavailable.
// what names the row being written, for the messages users see.
func classify(op, what string, err error) error {
	switch resultCode(err) {
	case violatesPrimaryKey, violatesUnique:
		return newError(op, chat.CodeConflict, what+" already exists")
	case violatesForeignKey:
		return newError(op, chat.CodeNotFound, what+" refers to a user or conversation that does not exist")
	case violatesCheck:
		return newError(op, chat.CodeInvalidArgument, what+" has an invalid kind or role")
	}
	if _, ok := errors.AsType[*chat.Error](err); ok {
		return err
	}
	return chat.Unavailable(op, err)
}

// ms converts t to the stored form: unix milliseconds.
func ms(t time.Time) int64 { return t.UnixMilli() }

// fromMS converts a stored time back, in UTC.
func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

// fromNullMS converts a nullable stored time; NULL is the zero time.
func fromNullMS(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromMS(v.Int64)
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// querier is a *sql.DB or *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}
