package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/chattest"
	"github.com/natter-chat/natter/internal/postgres"
)

func TestStore(t *testing.T) {
	dbURL := postgres.DatabaseURL(t)
	chattest.TestStore(t, func(t testing.TB) chat.Store {
		return postgres.OpenTestStore(t, dbURL, postgres.NewSchema(t, dbURL))
	})
}

// twoNodes opens two stores, each with a pool of its own, on one fresh
// schema: two Natter nodes sharing a database.
func twoNodes(t testing.TB) (a, b *postgres.Store) {
	t.Helper()
	dbURL := postgres.DatabaseURL(t)
	schema := postgres.NewSchema(t, dbURL)
	return postgres.OpenTestStore(t, dbURL, schema), postgres.OpenTestStore(t, dbURL, schema)
}

// draft returns a draft from sender in conv with a fresh id.
func draft(ids *chattest.IDs, conv chat.ConversationID, sender chat.UserID, clientID string) chat.Draft {
	id := chat.MessageID(ids.NextID())
	return chat.Draft{ID: id, Conv: conv, Sender: sender, ClientID: clientID, Text: "message " + id.String(), SentAt: chattest.At(time.Minute)}
}

// listAll returns every message of conv in seq order.
func listAll(t testing.TB, s chat.Store, conv chat.ConversationID) []chat.Message {
	t.Helper()
	var all []chat.Message
	for {
		after := int64(0)
		if len(all) > 0 {
			after = all[len(all)-1].Seq
		}
		page, err := s.ListMessages(t.Context(), chat.MessageQuery{Conv: conv, After: after, Forward: true, Limit: chat.MaxPageSize})
		if err != nil {
			t.Fatalf("ListMessages: %v", err)
		}
		if len(page) == 0 {
			return all
		}
		all = append(all, page...)
	}
}

func TestStore_AppendMessages(t *testing.T) {
	t.Run("two nodes appending to one conversation at once number it without gaps", testTwoNodesAppend)
	t.Run("a retry sent to both nodes at once is stored once", testRetryOnBothNodes)
	t.Run("a draft the database cannot store fails alone", testUnstorableDraft)
	t.Run("failed transaction stores nothing", testFailedTransaction)
}

// testTwoNodesAppend has 10 senders append 50 batches of 1 to 4 messages
// each to one conversation, alternating between two nodes: the messages
// must be numbered 1..N, stored as acknowledged, in each sender's order.
func testTwoNodesAppend(t *testing.T) {
	t.Parallel()
	a, b := twoNodes(t)
	nodes := []*postgres.Store{a, b}
	ids := chattest.NewIDs()
	const senders, batches = 10, 50
	users := make([]chat.UserID, senders)
	for i := range users {
		users[i] = chattest.MustCreateUser(t, a, ids, fmt.Sprintf("user%d", i)).ID
	}
	c := chattest.MustCreateGroup(t, a, ids, users[0], users[1:]...)

	sent := make([][]chat.Message, senders)
	errs := make([]error, senders)
	var wg sync.WaitGroup
	for w := range senders {
		wg.Go(func() { sent[w], errs[w] = sendBatches(t.Context(), nodes, ids, c.ID, users[w], w, batches) })
	}
	wg.Wait()
	total := 0
	for w, err := range errs {
		if err != nil {
			t.Fatalf("sender %d: %v", w, err)
		}
		total += len(sent[w])
	}
	all := listAll(t, b, c.ID)
	if len(all) != total {
		t.Fatalf("stored %d messages, %d were acknowledged", len(all), total)
	}
	byID := map[chat.MessageID]chat.Message{}
	for i, m := range all {
		if m.Seq != int64(i+1) {
			t.Fatalf("message %d of %d has seq %d, want %d", i, len(all), m.Seq, i+1)
		}
		byID[m.ID] = m
	}
	for w, msgs := range sent {
		for i, m := range msgs {
			if diff := cmp.Diff(m, byID[m.ID]); diff != "" {
				t.Errorf("sender %d message %d: acknowledged (-) and stored (+) differ:\n%s", w, i, diff)
			}
			if i > 0 && m.Seq <= msgs[i-1].Seq {
				t.Errorf("sender %d: message %d has seq %d after seq %d", w, i, m.Seq, msgs[i-1].Seq)
			}
		}
	}
}

// sendBatches appends batches of 1 to 4 new messages from sender w, each
// batch through the next of nodes, and returns the messages acknowledged.
// It reports, rather than fails on, a problem: it runs on its own goroutine.
func sendBatches(ctx context.Context, nodes []*postgres.Store, ids *chattest.IDs, conv chat.ConversationID, sender chat.UserID, w, batches int) ([]chat.Message, error) {
	var sent []chat.Message
	for batch := range batches {
		drafts := make([]chat.Draft, 1+(w+batch)%4)
		for i := range drafts {
			drafts[i] = draft(ids, conv, sender, fmt.Sprintf("w%d-%d-%d", w, batch, i))
		}
		res, err := nodes[(w+batch)%len(nodes)].AppendMessages(ctx, drafts)
		if err != nil {
			return nil, fmt.Errorf("batch %d: %w", batch, err)
		}
		for _, r := range res {
			if r.Err != nil || r.Duplicate {
				return nil, fmt.Errorf("batch %d: result %+v", batch, r)
			}
			sent = append(sent, r.Message)
		}
	}
	return sent, nil
}

// testRetryOnBothNodes sends each of 20 messages 8 times at once, as
// retries with new message ids, half through each node: each must be
// stored once, and every try must get the stored original.
func testRetryOnBothNodes(t *testing.T) {
	t.Parallel()
	a, b := twoNodes(t)
	ids := chattest.NewIDs()
	alice := chattest.MustCreateUser(t, a, ids, "alice")
	c := chattest.MustCreateGroup(t, a, ids, alice.ID)
	const rounds, tries = 20, 8
	for round := range rounds {
		results := make([]chat.AppendResult, tries)
		errs := make([]error, tries)
		var wg sync.WaitGroup
		for i := range tries {
			d := draft(ids, c.ID, alice.ID, fmt.Sprintf("k%d", round)) // a new id each try, as a client's retry has
			node := []*postgres.Store{a, b}[i%2]
			wg.Go(func() {
				var res []chat.AppendResult
				if res, errs[i] = node.AppendMessages(t.Context(), []chat.Draft{d}); errs[i] == nil {
					results[i] = res[0]
				}
			})
		}
		wg.Wait()
		originals := 0
		for i, r := range results {
			if errs[i] != nil || r.Err != nil {
				t.Fatalf("round %d try %d: %v, %v", round, i, errs[i], r.Err)
			}
			if !r.Duplicate {
				originals++
			}
			if r.Message.ID != results[0].Message.ID || r.Message.Seq != int64(round+1) {
				t.Errorf("round %d try %d got message %v with seq %d; try 0 got %v, want seq %d",
					round, i, r.Message.ID, r.Message.Seq, results[0].Message.ID, round+1)
			}
		}
		if originals != 1 {
			t.Fatalf("round %d: %d of %d tries stored a new message, want 1", round, originals, tries)
		}
	}
	if n := len(listAll(t, a, c.ID)); n != rounds {
		t.Errorf("stored %d messages, want %d", n, rounds)
	}
}

// testUnstorableDraft sends, between two good drafts, drafts that fail on
// their own: a NUL byte in the text, invalid UTF-8 in the client id, an
// unknown sender. The batch must store the good ones, without a gap.
func testUnstorableDraft(t *testing.T) {
	t.Parallel()
	s, _ := twoNodes(t)
	ids := chattest.NewIDs()
	alice := chattest.MustCreateUser(t, s, ids, "alice")
	c := chattest.MustCreateGroup(t, s, ids, alice.ID)
	nul := draft(ids, c.ID, alice.ID, "k2")
	nul.Text = "nul \x00 byte"
	badKey := draft(ids, c.ID, alice.ID, "k\xff\x00")
	unknownSender := draft(ids, c.ID, chat.UserID(ids.NextID()), "k3")
	res, err := s.AppendMessages(t.Context(), []chat.Draft{draft(ids, c.ID, alice.ID, "k1"), nul, badKey, unknownSender, draft(ids, c.ID, alice.ID, "k4")})
	if err != nil {
		t.Fatalf("AppendMessages: %v", err)
	}
	for i, code := range []chat.Code{"", chat.CodeInvalidArgument, chat.CodeInvalidArgument, chat.CodeNotFound, ""} {
		if got := chat.ErrorCode(res[i].Err); got != code {
			t.Errorf("result %d: error %v (code %q), want code %q", i, res[i].Err, got, code)
		}
	}
	if res[0].Message.Seq != 1 || res[4].Message.Seq != 2 || res[4].Message.Pos != res[0].Message.Pos+1 {
		t.Errorf("stored messages %+v and %+v: want seqs 1 and 2 at consecutive positions", res[0].Message, res[4].Message)
	}
}

// testFailedTransaction sends with a cancelled context: the error must be
// unavailable (retry), keep its cause, and nothing may be stored.
func testFailedTransaction(t *testing.T) {
	t.Parallel()
	s, _ := twoNodes(t)
	ids := chattest.NewIDs()
	alice := chattest.MustCreateUser(t, s, ids, "alice")
	c := chattest.MustCreateGroup(t, s, ids, alice.ID)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	res, err := s.AppendMessages(ctx, []chat.Draft{draft(ids, c.ID, alice.ID, "k1")})
	if code := chat.ErrorCode(err); code != chat.CodeUnavailable || res != nil {
		t.Fatalf("AppendMessages with a cancelled context = %v, %v (code %q); want nil results and code %q",
			res, err, code, chat.CodeUnavailable)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v does not wrap context.Canceled", err)
	}
	if got := listAll(t, s, c.ID); len(got) != 0 {
		t.Errorf("stored %v, want nothing", got)
	}
}

func TestStore_ListChanges(t *testing.T) {
	t.Run("a reader syncing while two nodes write misses no position", func(t *testing.T) {
		t.Parallel()
		a, b := twoNodes(t)
		ids := chattest.NewIDs()
		observer := chattest.MustCreateUser(t, a, ids, "observer")
		const writers, sends = 8, 40
		convs := make([]chat.ConversationID, writers)
		for i := range convs {
			convs[i] = chattest.MustCreateGroup(t, a, ids, observer.ID).ID
		}
		start := chattest.MustAppend(t, a, ids, convs[0], observer.ID, "start", chattest.At(0)).Pos

		done := make(chan struct{})
		seen := map[int64]chat.MessageID{}
		var readErr error
		var reader sync.WaitGroup
		reader.Go(func() { readErr = syncUntil(t.Context(), a, observer.ID, start, done, seen) })
		var wg sync.WaitGroup
		errs := make([]error, writers)
		for w := range writers {
			node := []*postgres.Store{a, b}[w%2]
			wg.Go(func() {
				for range sends {
					if _, err := node.AppendMessages(t.Context(), []chat.Draft{draft(ids, convs[w], observer.ID, "")}); err != nil {
						errs[w] = err
						return
					}
				}
			})
		}
		wg.Wait()
		close(done)
		reader.Wait()
		if err := errors.Join(append(errs, readErr)...); err != nil {
			t.Fatal(err)
		}

		end, err := a.Position(t.Context())
		if err != nil {
			t.Fatalf("Position: %v", err)
		}
		if want := int64(writers * sends); end-start != want {
			t.Fatalf("positions run from %d to %d for %d messages", start, end, want)
		}
		for pos := start + 1; pos <= end; pos++ {
			if _, ok := seen[pos]; !ok {
				t.Errorf("the reader never saw position %d", pos)
			}
		}
		if len(seen) != int(end-start) {
			t.Errorf("the reader saw %d changes after %d, want %d", len(seen), start, end-start)
		}
	})
}

// syncUntil pages user's changes from after, a few at a time, until done is
// closed and a last sync finds nothing new, recording each message change's
// position in seen. It fails on a change that is not new: at or before the
// cursor, or seen before.
func syncUntil(ctx context.Context, s chat.Store, user chat.UserID, after int64, done <-chan struct{}, seen map[int64]chat.MessageID) error {
	for finished := false; ; {
		select {
		case <-done:
			finished = true
		default:
		}
		for {
			page, err := s.ListChanges(ctx, user, after, 5)
			if err != nil {
				return err
			}
			for _, c := range page.Changes {
				if c.Pos <= after || c.Kind != chat.ChangeMessage {
					return fmt.Errorf("after %d: unexpected change %+v", after, c)
				}
				if id, ok := seen[c.Pos]; ok {
					return fmt.Errorf("position %d seen twice: messages %v and %v", c.Pos, id, c.Message.ID)
				}
				seen[c.Pos] = c.Message.ID
			}
			after = page.Cursor
			if !page.HasMore {
				break
			}
		}
		if finished {
			return nil
		}
	}
}

func TestOpen(t *testing.T) {
	t.Run("nodes opening a fresh schema at once migrate it once", func(t *testing.T) {
		t.Parallel()
		dbURL := postgres.DatabaseURL(t)
		schema := postgres.NewSchemaName(t, dbURL) // Open creates it
		const nodes = 4
		times := make([]time.Time, nodes)
		errs := make([]error, nodes)
		var wg sync.WaitGroup
		for i := range nodes {
			times[i] = time.UnixMilli(int64(i+1) * 1000).UTC()
			wg.Go(func() {
				s, err := postgres.Open(t.Context(), dbURL, postgres.Options{Schema: schema, MaxConns: 2, Now: func() time.Time { return times[i] }})
				if err != nil {
					errs[i] = err
					return
				}
				defer s.Close()
				errs[i] = s.Ping(t.Context())
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("Open: %v", err)
		}
		rows := postgres.QueryAdmin(t, dbURL, schema, `SELECT version, applied_at FROM schema_migrations ORDER BY version`)
		if len(rows) == 0 {
			t.Fatalf("schema_migrations is empty")
		}
		for i, row := range rows {
			if row[0] != int64(i+1) || !slices.ContainsFunc(times, row[1].(time.Time).Equal) || !row[1].(time.Time).Equal(rows[0][1].(time.Time)) {
				t.Errorf("schema_migrations row %d = %v; want version %d applied by one node with the others", i, row, i+1)
			}
		}
	})

	t.Run("a schema migrated by a newer build is refused", func(t *testing.T) {
		t.Parallel()
		dbURL := postgres.DatabaseURL(t)
		schema := postgres.NewSchema(t, dbURL)
		postgres.OpenTestStore(t, dbURL, schema)
		postgres.QueryAdmin(t, dbURL, schema, `INSERT INTO schema_migrations (version, applied_at) VALUES (1000000, now())`)
		if s, err := postgres.Open(t.Context(), dbURL, postgres.Options{Schema: schema}); err == nil {
			s.Close()
			t.Fatalf("Open of a schema at a newer version succeeded")
		}
	})

	t.Run("unreachable database fails", func(t *testing.T) {
		t.Parallel()
		u, err := url.Parse(postgres.DatabaseURL(t))
		if err != nil {
			t.Fatal(err)
		}
		u.Host = "127.0.0.1:1" // nothing listens on port 1
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		if s, err := postgres.Open(ctx, u.String(), postgres.Options{}); err == nil {
			s.Close()
			t.Fatalf("Open of an unreachable database succeeded")
		}
	})
}

func TestStore_Ping(t *testing.T) {
	t.Run("fails after Close", func(t *testing.T) {
		t.Parallel()
		dbURL := postgres.DatabaseURL(t)
		s, err := postgres.Open(t.Context(), dbURL, postgres.Options{Schema: postgres.NewSchema(t, dbURL)})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if err := s.Ping(t.Context()); err != nil {
			t.Fatalf("Ping before Close: %v", err)
		}
		s.Close()
		if code := chat.ErrorCode(s.Ping(t.Context())); code != chat.CodeUnavailable {
			t.Fatalf("Ping after Close gave code %q, want %q", code, chat.CodeUnavailable)
		}
	})

	t.Run("fails when the latest migration is not applied", func(t *testing.T) {
		t.Parallel()
		dbURL := postgres.DatabaseURL(t)
		schema := postgres.NewSchema(t, dbURL)
		s := postgres.OpenTestStore(t, dbURL, schema)
		postgres.QueryAdmin(t, dbURL, schema, `DELETE FROM schema_migrations`)
		if code := chat.ErrorCode(s.Ping(t.Context())); code != chat.CodeUnavailable {
			t.Fatalf("Ping gave code %q, want %q", code, chat.CodeUnavailable)
		}
	})
}

func BenchmarkAppendMessages(b *testing.B) {
	dbURL := postgres.DatabaseURL(b)
	for _, batch := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			s := postgres.OpenTestStore(b, dbURL, postgres.NewSchema(b, dbURL))
			ids := chattest.NewIDs()
			alice := chattest.MustCreateUser(b, s, ids, "alice")
			c := chattest.MustCreateGroup(b, s, ids, alice.ID)
			drafts := make([]chat.Draft, batch)
			sent := 0
			for b.Loop() {
				for i := range drafts {
					id := ids.NextID()
					drafts[i] = chat.Draft{ID: chat.MessageID(id), Conv: c.ID, Sender: alice.ID,
						ClientID: chat.MessageID(id).String(), Text: "a message of ordinary length, about sixty bytes",
						SentAt: chattest.At(time.Duration(sent) * time.Millisecond)}
				}
				res, err := s.AppendMessages(b.Context(), drafts)
				if err != nil {
					b.Fatalf("AppendMessages: %v", err)
				}
				if res[0].Err != nil {
					b.Fatalf("AppendMessages result: %v", res[0].Err)
				}
				sent += batch
			}
			b.ReportMetric(float64(sent)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// Nodes starting at once on a fresh database end up with one shared
// signing key: the first candidate stored, never replaced afterwards.
func TestStore_SigningKeyIsSharedByEveryNode(t *testing.T) {
	t.Parallel()
	dbURL := postgres.DatabaseURL(t)
	schema := postgres.NewSchema(t, dbURL)
	const nodes = 4
	got := make([][]byte, nodes)
	errs := make([]error, nodes)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() {
			s := postgres.OpenTestStore(t, dbURL, schema)
			got[i], errs[i] = s.SigningKey(t.Context(), []byte(fmt.Sprintf("candidate key of node %d", i)))
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for i := range nodes {
		if string(got[i]) != string(got[0]) {
			t.Fatalf("node %d got key %q, node 0 got %q", i, got[i], got[0])
		}
	}
	later, err := postgres.OpenTestStore(t, dbURL, schema).SigningKey(t.Context(), []byte("a later node's candidate"))
	if err != nil || string(later) != string(got[0]) {
		t.Fatalf("a later node got %q, %v; want the first key %q", later, err, got[0])
	}
}
