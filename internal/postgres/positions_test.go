package postgres

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/natter-chat/natter/internal/chat"
)

// This test lives inside the package (and so cannot use package chattest,
// which would import the package back through app): it holds a write
// transaction open between its statements and its commit.

// TestStore_Positions checks the out-of-order commit trap: transaction A
// takes a change position and is held open; meanwhile transaction B, on
// another node, makes a write of its own. However B fares, a reader that
// syncs before A commits and again after must see both writes.
func TestStore_Positions(t *testing.T) {
	t.Run("a write held open is not skipped by a reader that saw a later one", testHeldOpenWrite)
	t.Run("a node gone silent mid-write holds the others up only until TxIdleTimeout", testSilentNode)
}

func testHeldOpenWrite(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	w := newTwoConversations(t, Options{})

	// A: a send in the first conversation, taken up to its commit.
	txA, err := w.a.pool.Begin(ctx)
	if err != nil {
		t.Fatalf("Begin: %v", err)
	}
	defer txA.Rollback(context.Background())
	resA, err := appendBatch(ctx, txA, w.draft(100, w.convs[0]))
	if err != nil {
		t.Fatalf("appendBatch: %v", err)
	}
	// B: a send in the other conversation, through the other node.
	type outcome struct {
		res []chat.AppendResult
		err error
	}
	doneB := make(chan outcome, 1)
	go func() {
		res, err := w.b.AppendMessages(ctx, w.draft(200, w.convs[1]))
		doneB <- outcome{res, err}
	}()
	var outB *outcome
	waitFor(t, "B to commit or to wait for a lock", func() bool {
		select {
		case o := <-doneB:
			outB = &o
			return true
		default:
			return lockWaits(t, w.a, w.appB) > 0
		}
	})
	if outB != nil {
		t.Logf("B committed while A was open (allowed if the reader is held back)")
	}

	seen := map[int64]chat.MessageID{}
	w.sync(t, seen)
	if err := txA.Commit(ctx); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if outB == nil {
		o := <-doneB
		outB = &o
	}
	if outB.err != nil || outB.res[0].Err != nil {
		t.Fatalf("B: %v, %+v", outB.err, outB.res)
	}
	w.sync(t, seen)
	posA, posB := resA[0].Message.Pos, outB.res[0].Message.Pos
	if seen[posA] != 100 || seen[posB] != 200 || len(seen) != 2 {
		t.Errorf("the reader saw %v; want message 100 at %d and message 200 at %d", seen, posA, posB)
	}
	if posB <= posA {
		t.Errorf("B, which committed last, has position %d, not after A's %d", posB, posA)
	}
}

// testSilentNode has node a take the positions row in a transaction and
// then send nothing more, as a node that froze or lost the network would:
// node b's send must go through once a's TxIdleTimeout ends a's session,
// and a's transaction must not commit.
func testSilentNode(t *testing.T) {
	t.Parallel()
	w := newTwoConversations(t, Options{TxIdleTimeout: 200 * time.Millisecond})
	tx, err := w.a.pool.Begin(t.Context())
	if err != nil {
		t.Fatalf("Begin: %v", err)
	}
	defer tx.Rollback(context.Background())
	if _, err := takePositions(t.Context(), tx, 1); err != nil {
		t.Fatalf("takePositions: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	res, err := w.b.AppendMessages(ctx, w.draft(200, w.convs[1]))
	if err != nil || res[0].Err != nil {
		t.Fatalf("b's send while a is silent: %v, %+v", err, res)
	}
	if err := tx.Commit(t.Context()); err == nil {
		t.Errorf("a's silent transaction committed after its session should have ended")
	}
}

// twoConversations is two nodes on one schema, and alice, the only member
// of two conversations.
type twoConversations struct {
	a, b   *Store
	appB   string // the application_name of b's connections
	alice  chat.User
	convs  [2]chat.ConversationID
	cursor int64 // where the next sync starts
}

// newTwoConversations opens node a with opts (and a pool of 4) and node b
// on a fresh schema, and stores alice and her conversations.
func newTwoConversations(t *testing.T, opts Options) *twoConversations {
	t.Helper()
	ctx := t.Context()
	dbURL := DatabaseURL(t)
	opts.Schema, opts.MaxConns = NewSchema(t, dbURL), 4
	a, err := Open(ctx, dbURL, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { a.Close() })
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	w := &twoConversations{a: a, appB: "natter_" + opts.Schema,
		alice: chat.User{ID: 1, Username: "alice", CreatedAt: time.UnixMilli(0).UTC()}}
	q := u.Query()
	q.Set("application_name", w.appB)
	u.RawQuery = q.Encode()
	w.b = OpenTestStore(t, u.String(), opts.Schema)
	if err := w.a.CreateUser(ctx, w.alice, "h"); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	for i := range w.convs {
		c := chat.Conversation{ID: chat.ConversationID(10 + i), Kind: chat.KindGroup, Title: "g", CreatedBy: w.alice.ID, CreatedAt: w.alice.CreatedAt}
		members := []chat.Member{{User: w.alice.ID, Role: chat.RoleOwner, JoinedAt: w.alice.CreatedAt}}
		if _, _, err := w.a.CreateConversation(ctx, c, members); err != nil {
			t.Fatalf("CreateConversation: %v", err)
		}
		w.convs[i] = c.ID
	}
	if w.cursor, err = w.a.Position(ctx); err != nil {
		t.Fatalf("Position: %v", err)
	}
	return w
}

// draft returns one draft from alice in conv with message id id.
func (w *twoConversations) draft(id chat.MessageID, conv chat.ConversationID) []chat.Draft {
	return []chat.Draft{{ID: id, Conv: conv, Sender: w.alice.ID, ClientID: id.String(), Text: "hi", SentAt: w.alice.CreatedAt}}
}

// sync pages alice's changes from the cursor on, recording the messages
// seen by position.
func (w *twoConversations) sync(t testing.TB, seen map[int64]chat.MessageID) {
	t.Helper()
	for {
		page, err := w.a.ListChanges(t.Context(), w.alice.ID, w.cursor, 10)
		if err != nil {
			t.Fatalf("ListChanges: %v", err)
		}
		for _, c := range page.Changes {
			seen[c.Pos] = c.Message.ID
		}
		if w.cursor = page.Cursor; !page.HasMore {
			return
		}
	}
}

// lockWaits counts the backends named app that wait for a lock.
func lockWaits(t testing.TB, s *Store, app string) int {
	t.Helper()
	var n int
	err := s.pool.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity
		WHERE application_name = $1 AND wait_event_type = 'Lock'`, app).Scan(&n)
	if err != nil {
		t.Fatalf("pg_stat_activity: %v", err)
	}
	return n
}

// waitFor polls cond until it holds, failing t after 10 seconds; what
// names what it waits for.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
