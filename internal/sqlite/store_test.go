package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/chattest"
	"github.com/natter-chat/natter/internal/sqlite"
)

// openAt opens the store at path and closes it when t ends.
func openAt(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStore(t *testing.T) {
	chattest.TestStore(t, func(t testing.TB) chat.Store {
		return openAt(t, filepath.Join(t.TempDir(), "natter.db"))
	})
}

func TestOpen(t *testing.T) {
	t.Run("path with URI metacharacters opens that file", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "a#b%20c?d")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "natter.db")
		s := openAt(t, path)
		if err := s.Ping(t.Context()); err != nil {
			t.Fatalf("Ping: %v", err)
		}
		if _, err := os.Stat(path); err != nil {
			t.Errorf("database file: %v", err)
		}
	})
}

func TestStore_Reopen(t *testing.T) {
	t.Run("keeps messages and sessions", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "natter.db")
		ids := chattest.NewIDs()
		s, err := sqlite.Open(t.Context(), path, sqlite.Options{})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		alice := chattest.MustCreateUser(t, s, ids, "alice")
		c := chattest.MustCreateGroup(t, s, ids, alice.ID)
		var sent []chat.Message
		for i := range 3 {
			sent = append(sent, chattest.MustAppend(t, s, ids, c.ID, alice.ID, fmt.Sprint("hello ", i), chattest.At(time.Minute)))
		}
		sess := chat.Session{ID: chat.SessionID(ids.NextID()), User: alice.ID, CreatedAt: chattest.At(0),
			LastUsedAt: chattest.At(0), ExpiresAt: chattest.At(time.Hour)}
		if err := s.CreateSession(t.Context(), sess, "h1"); err != nil {
			t.Fatalf("CreateSession: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}

		s = openAt(t, path)
		got, err := s.ListMessages(t.Context(), chat.MessageQuery{Conv: c.ID, After: 0, Limit: 10})
		if err != nil {
			t.Fatalf("ListMessages: %v", err)
		}
		want := []chat.Message{sent[2], sent[1], sent[0]}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("messages after reopen (-want +got):\n%s", diff)
		}
		gotSess, err := s.RotateRefreshToken(t.Context(), "h1", "h2", chattest.At(time.Minute), time.Hour)
		if err != nil {
			t.Fatalf("RotateRefreshToken after reopen: %v", err)
		}
		if gotSess.ID != sess.ID {
			t.Errorf("rotated session %v, want %v", gotSess.ID, sess.ID)
		}
		next := chattest.MustAppend(t, s, ids, c.ID, alice.ID, "after reopen", chattest.At(2*time.Minute))
		if next.Seq != 4 {
			t.Errorf("first message after reopen has seq %d, want 4", next.Seq)
		}
	})

	t.Run("applies migrations once", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "natter.db")
		first := time.UnixMilli(1_000_000).UTC()
		s, err := sqlite.Open(t.Context(), path, sqlite.Options{Now: func() time.Time { return first }})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		chattest.MustCreateUser(t, s, chattest.NewIDs(), "alice")
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		s, err = sqlite.Open(t.Context(), path, sqlite.Options{Now: func() time.Time { return first.Add(time.Hour) }})
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		if err := s.Ping(t.Context()); err != nil {
			t.Fatalf("Ping: %v", err)
		}
		if _, _, err := s.GetUserByUsername(t.Context(), "alice"); err != nil {
			t.Errorf("user created before reopen: %v", err)
		}
		applied := readMigrations(t, path)
		// Every migration (1, 2 and whatever later ones this build has) was
		// applied by the first Open, none again by the second.
		want := map[int64]int64{1: first.UnixMilli(), 2: first.UnixMilli()}
		for version := range applied {
			want[version] = first.UnixMilli()
		}
		if diff := cmp.Diff(want, applied); diff != "" {
			t.Errorf("schema_migrations (version -> applied_at) (-want +got):\n%s", diff)
		}
	})
}

func TestStore_AppendMessages(t *testing.T) {
	t.Run("unknown sender fails only its draft and leaves no seq gap", func(t *testing.T) {
		s := openAt(t, filepath.Join(t.TempDir(), "natter.db"))
		ids := chattest.NewIDs()
		alice := chattest.MustCreateUser(t, s, ids, "alice")
		c := chattest.MustCreateGroup(t, s, ids, alice.ID)
		draft := func(sender chat.UserID) chat.Draft {
			id := chat.MessageID(ids.NextID())
			return chat.Draft{ID: id, Conv: c.ID, Sender: sender, ClientID: id.String(), Text: "hi", SentAt: chattest.At(0)}
		}
		res, err := s.AppendMessages(t.Context(), []chat.Draft{draft(alice.ID), draft(chat.UserID(ids.NextID())), draft(alice.ID)})
		if err != nil {
			t.Fatalf("AppendMessages: %v", err)
		}
		if code := chat.ErrorCode(res[1].Err); code != chat.CodeNotFound {
			t.Errorf("unknown sender's result: %v (code %q), want code %q", res[1].Err, code, chat.CodeNotFound)
		}
		if res[0].Err != nil || res[2].Err != nil || res[0].Message.Seq != 1 || res[2].Message.Seq != 2 {
			t.Errorf("other results %+v and %+v, want seqs 1 and 2 without error", res[0], res[2])
		}
	})

	t.Run("row-by-row path checks replies and assigns positions like the batch path", func(t *testing.T) {
		s := openAt(t, filepath.Join(t.TempDir(), "natter.db"))
		ids := chattest.NewIDs()
		alice := chattest.MustCreateUser(t, s, ids, "alice")
		bob := chattest.MustCreateUser(t, s, ids, "bob")
		c := chattest.MustCreateGroup(t, s, ids, alice.ID, bob.ID)
		other := chattest.MustCreateGroup(t, s, ids, alice.ID)
		first := chattest.MustAppend(t, s, ids, c.ID, alice.ID, "first", chattest.At(0))
		first, err := s.SetReaction(t.Context(), c.ID, first.ID, bob.ID, "👍", true)
		if err != nil {
			t.Fatalf("SetReaction: %v", err)
		}
		elsewhere := chattest.MustAppend(t, s, ids, other.ID, alice.ID, "elsewhere", chattest.At(0))
		draft := func(sender chat.UserID, clientID string, replyTo chat.MessageID) chat.Draft {
			id := chat.MessageID(ids.NextID())
			return chat.Draft{ID: id, Conv: c.ID, Sender: sender, ClientID: clientID, Text: "hi", SentAt: chattest.At(0),
				ReplyTo: replyTo, Mentions: []chat.UserID{bob.ID}}
		}
		unknownSender := draft(chat.UserID(ids.NextID()), "k0", 0) // sends the batch down the row-by-row path
		reply := draft(alice.ID, "k1", first.ID)
		replyToBatch := draft(bob.ID, "k2", reply.ID)
		foreign := draft(bob.ID, "k3", elsewhere.ID)
		retry := chat.Draft{ID: chat.MessageID(ids.NextID()), Conv: c.ID, Sender: alice.ID, ClientID: first.ClientID,
			Text: "retry", SentAt: chattest.At(0), ReplyTo: elsewhere.ID}
		before, err := s.Position(t.Context())
		if err != nil {
			t.Fatalf("Position: %v", err)
		}
		res, err := s.AppendMessages(t.Context(), []chat.Draft{unknownSender, reply, replyToBatch, foreign, retry})
		if err != nil {
			t.Fatalf("AppendMessages: %v", err)
		}
		for i, code := range []chat.Code{chat.CodeNotFound, "", "", chat.CodeInvalidArgument, ""} {
			if got := chat.ErrorCode(res[i].Err); got != code {
				t.Errorf("result %d: error %v (code %q), want code %q", i, res[i].Err, got, code)
			}
		}
		if diff := cmp.Diff(chat.AppendResult{Message: first, Duplicate: true}, res[4]); diff != "" {
			t.Errorf("retry result (-want +got):\n%s", diff)
		}
		if res[1].Message.Pos != before+1 || res[2].Message.Pos != before+2 || res[2].Message.ReplyTo != reply.ID {
			t.Errorf("new messages %+v and %+v: want positions %d and %d, the second replying to the first",
				res[1].Message, res[2].Message, before+1, before+2)
		}
		got, err := s.ListMessages(t.Context(), chat.MessageQuery{Conv: c.ID, Forward: true, Limit: 10})
		if err != nil {
			t.Fatalf("ListMessages: %v", err)
		}
		if diff := cmp.Diff([]chat.Message{first, res[1].Message, res[2].Message}, got); diff != "" {
			t.Errorf("stored messages (-want +got):\n%s", diff)
		}
		if pos, err := s.Position(t.Context()); err != nil || pos != before+2 {
			t.Errorf("Position = %d, %v; want %d", pos, err, before+2)
		}
	})

	t.Run("failed transaction stores nothing", func(t *testing.T) {
		s := openAt(t, filepath.Join(t.TempDir(), "natter.db"))
		ids := chattest.NewIDs()
		alice := chattest.MustCreateUser(t, s, ids, "alice")
		c := chattest.MustCreateGroup(t, s, ids, alice.ID)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		res, err := s.AppendMessages(ctx, []chat.Draft{{ID: chat.MessageID(ids.NextID()), Conv: c.ID, Sender: alice.ID,
			ClientID: "k1", Text: "hi", SentAt: chattest.At(0)}})
		if code := chat.ErrorCode(err); code != chat.CodeUnavailable || res != nil {
			t.Fatalf("AppendMessages with a cancelled context = %v, %v (code %q); want nil results and code %q",
				res, err, code, chat.CodeUnavailable)
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v does not wrap context.Canceled", err)
		}
		got, err := s.ListMessages(t.Context(), chat.MessageQuery{Conv: c.ID, Limit: 10})
		if err != nil || len(got) != 0 {
			t.Errorf("ListMessages = %v, %v; want no messages", got, err)
		}
	})
}

func TestStore_DeleteMessage(t *testing.T) {
	t.Run("erases text, mentions and reactions from the file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "natter.db")
		s := openAt(t, path)
		ids := chattest.NewIDs()
		alice := chattest.MustCreateUser(t, s, ids, "alice")
		bob := chattest.MustCreateUser(t, s, ids, "bob")
		c := chattest.MustCreateGroup(t, s, ids, alice.ID, bob.ID)
		id := chat.MessageID(ids.NextID())
		res, err := s.AppendMessages(t.Context(), []chat.Draft{{ID: id, Conv: c.ID, Sender: alice.ID, ClientID: "k1",
			Text: "secret @bob", SentAt: chattest.At(0), Mentions: []chat.UserID{bob.ID}}})
		if err != nil || res[0].Err != nil {
			t.Fatalf("AppendMessages: %v, %+v", err, res)
		}
		if _, err := s.SetReaction(t.Context(), c.ID, id, bob.ID, "👍", true); err != nil {
			t.Fatalf("SetReaction: %v", err)
		}
		if _, err := s.DeleteMessage(t.Context(), c.ID, id, chattest.At(time.Hour)); err != nil {
			t.Fatalf("DeleteMessage: %v", err)
		}
		var text string
		var mentions sql.NullString
		var reactions int
		err = openRaw(t, path).QueryRowContext(t.Context(), `SELECT text, mentions, (SELECT count(*) FROM reactions)
			FROM messages WHERE id = ?`, int64(id)).Scan(&text, &mentions, &reactions)
		if err != nil {
			t.Fatalf("reading the tombstone: %v", err)
		}
		if text != "" || mentions.Valid || reactions != 0 {
			t.Errorf("stored tombstone has text %q, mentions %v and %d reactions; want none", text, mentions, reactions)
		}
	})
}

func TestStore_Ping(t *testing.T) {
	t.Run("fails after Close", func(t *testing.T) {
		s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "natter.db"), sqlite.Options{})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if err := s.Ping(t.Context()); err != nil {
			t.Fatalf("Ping before Close: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		err = s.Ping(t.Context())
		if code := chat.ErrorCode(err); code != chat.CodeUnavailable {
			t.Fatalf("Ping after Close = %v (code %q), want code %q", err, code, chat.CodeUnavailable)
		}
	})

	t.Run("fails when the latest migration is not applied", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "natter.db")
		s := openAt(t, path)
		db := openRaw(t, path)
		if _, err := db.ExecContext(t.Context(), `DELETE FROM schema_migrations`); err != nil {
			t.Fatalf("deleting migrations: %v", err)
		}
		err := s.Ping(t.Context())
		if code := chat.ErrorCode(err); code != chat.CodeUnavailable {
			t.Fatalf("Ping = %v (code %q), want code %q", err, code, chat.CodeUnavailable)
		}
	})
}

// openRaw opens the database file at path without the store, to inspect or
// damage it, and closes it when t ends.
func openRaw(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatalf("sql.Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// readMigrations returns schema_migrations as version -> applied_at.
func readMigrations(t testing.TB, path string) map[int64]int64 {
	t.Helper()
	rows, err := openRaw(t, path).QueryContext(t.Context(), `SELECT version, applied_at FROM schema_migrations`)
	if err != nil {
		t.Fatalf("reading schema_migrations: %v", err)
	}
	defer rows.Close()
	applied := map[int64]int64{}
	for rows.Next() {
		var version, at int64
		if err := rows.Scan(&version, &at); err != nil {
			t.Fatalf("reading schema_migrations: %v", err)
		}
		applied[version] = at
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("reading schema_migrations: %v", err)
	}
	return applied
}

func BenchmarkAppendMessages(b *testing.B) {
	for _, batch := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			s := openAt(b, filepath.Join(b.TempDir(), "natter.db"))
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

// BenchmarkAppendMessages_Spread stores batches of 64 messages, one in
// each of 64 conversations that already hold messages, as the group
// commit does under many senders: every index keyed by conversation (or by
// sender) then takes a write at a different place per message.
func BenchmarkAppendMessages_Spread(b *testing.B) {
	const convs = 64
	s := openAt(b, filepath.Join(b.TempDir(), "natter.db"))
	ids := chattest.NewIDs()
	drafts := make([]chat.Draft, convs)
	for i := range drafts {
		sender := chattest.MustCreateUser(b, s, ids, fmt.Sprintf("sender%d", i))
		receiver := chattest.MustCreateUser(b, s, ids, fmt.Sprintf("receiver%d", i))
		drafts[i].Conv = chattest.MustCreateGroup(b, s, ids, sender.ID, receiver.ID).ID
		drafts[i].Sender = sender.ID
	}
	sent := 0
	send := func() {
		for i := range drafts {
			id := ids.NextID()
			drafts[i].ID, drafts[i].ClientID = chat.MessageID(id), chat.MessageID(id).String()
			drafts[i].Text = "a message of ordinary length, about sixty bytes"
			drafts[i].SentAt = chattest.At(time.Duration(sent) * time.Millisecond)
		}
		res, err := s.AppendMessages(b.Context(), drafts)
		if err != nil {
			b.Fatalf("AppendMessages: %v", err)
		}
		if res[0].Err != nil {
			b.Fatalf("AppendMessages result: %v", res[0].Err)
		}
		sent += convs
	}
	for range 500 {
		send()
	}
	sent = 0
	for b.Loop() {
		send()
	}
	b.ReportMetric(float64(sent)/b.Elapsed().Seconds(), "msgs/s")
}
