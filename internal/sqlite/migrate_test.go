package sqlite

import (
	"database/sql"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/natter-chat/natter/internal/chat"
)

func TestMigrate_Positions(t *testing.T) {
	t.Run("0002 gives existing rows increasing positions and starts the counter after them", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "natter.db")
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)")
		if err != nil {
			t.Fatalf("sql.Open: %v", err)
		}
		migrations, err := loadMigrations()
		if err != nil {
			t.Fatalf("loadMigrations: %v", err)
		}
		now := func() time.Time { return time.UnixMilli(0) }
		if err := migrate(t.Context(), db, migrations[:1], now); err != nil {
			t.Fatalf("migrate to 0001: %v", err)
		}
		// Two conversations; message ids deliberately not in seq order.
		for _, stmt := range []string{
			`INSERT INTO users (id, username, password_hash, created_at) VALUES (1, 'alice', 'h', 0), (2, 'bob', 'h', 0)`,
			`INSERT INTO conversations (id, kind, title, created_by, created_at, last_seq, last_activity_at)
				VALUES (10, 'group', 'a', 1, 0, 3, 0), (20, 'group', 'b', 2, 0, 2, 0)`,
			`INSERT INTO members (conv_id, user_id, role, joined_at, read_seq)
				VALUES (10, 1, 'owner', 0, 0), (10, 2, 'member', 0, 2), (20, 2, 'owner', 0, 0)`,
			`INSERT INTO messages (id, conv_id, seq, sender_id, client_id, text, sent_at)
				VALUES (105, 10, 1, 1, 'a', 'one', 0), (101, 10, 2, 2, 'b', 'two', 0), (103, 10, 3, 1, 'c', 'three', 0),
				(102, 20, 1, 2, 'd', 'uno', 0), (104, 20, 2, 2, 'e', 'dos', 0)`,
		} {
			if _, err := db.ExecContext(t.Context(), stmt); err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
		}
		if err := db.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}

		s, err := Open(t.Context(), path, Options{})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		if pos, err := s.Position(t.Context()); err != nil || pos != 10 {
			t.Fatalf("Position = %d, %v; want 10 (2 conversations, 3 members, 5 messages)", pos, err)
		}
		changes, err := s.ListChanges(t.Context(), 2, 0, 100)
		if err != nil {
			t.Fatalf("ListChanges: %v", err)
		}
		if len(changes.Changes) != 10 {
			t.Fatalf("bob has %d changes, want all 10: %+v", len(changes.Changes), changes.Changes)
		}
		// Within a conversation: the conversation, then its members, then
		// its messages in seq order.
		last := map[chat.ConversationID]struct {
			kind chat.ChangeKind
			seq  int64
		}{}
		for i, c := range changes.Changes {
			if c.Pos != int64(i+1) {
				t.Errorf("change %d has Pos %d, want %d", i, c.Pos, i+1)
			}
			var conv chat.ConversationID
			var seq int64
			switch c.Kind {
			case chat.ChangeConversation:
				conv = c.Conversation.ID
			case chat.ChangeMember:
				conv = c.Member.Conv
			case chat.ChangeMessage:
				conv, seq = c.Message.Conv, c.Message.Seq
			}
			prev, seen := last[conv]
			if c.Kind == chat.ChangeConversation && seen || c.Kind != chat.ChangeConversation && !seen ||
				prev.kind == chat.ChangeMessage && (c.Kind != chat.ChangeMessage || seq <= prev.seq) {
				t.Errorf("change %d (%s of %v, seq %d) comes after a %s of seq %d", i, c.Kind, conv, seq, prev.kind, prev.seq)
			}
			last[conv] = struct {
				kind chat.ChangeKind
				seq  int64
			}{c.Kind, seq}
		}
		m, err := s.UpdateReadSeq(t.Context(), 10, 1, 1)
		if err != nil || m.Pos != 11 {
			t.Errorf("first write after the migration: Pos %d, %v; want 11", m.Pos, err)
		}
	})
}

func TestMigrate_SentByConversation(t *testing.T) {
	t.Run("0011 drops the sender index and keeps every sender's messages reachable", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "natter.db")
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)")
		if err != nil {
			t.Fatalf("sql.Open: %v", err)
		}
		migrations, err := loadMigrations()
		if err != nil {
			t.Fatalf("loadMigrations: %v", err)
		}
		var before []migration
		for _, m := range migrations {
			if m.version < 11 {
				before = append(before, m)
			}
		}
		now := func() time.Time { return time.UnixMilli(0) }
		if err := migrate(t.Context(), db, before, now); err != nil {
			t.Fatalf("migrate to 0010: %v", err)
		}
		// alice is a member of 10; bob left 20 (a departed_members row);
		// carol left 10 before departures were recorded (no row at all).
		for _, stmt := range []string{
			`INSERT INTO users (id, username, password_hash, created_at) VALUES (1, 'alice', 'h', 0), (2, 'bob', 'h', 0), (3, 'carol', 'h', 0)`,
			`INSERT INTO conversations (id, kind, title, created_by, created_at, last_seq, last_activity_at)
				VALUES (10, 'group', 'a', 1, 0, 3, 0), (20, 'group', 'b', 2, 0, 1, 0)`,
			`INSERT INTO members (conv_id, user_id, role, joined_at) VALUES (10, 1, 'owner', 0), (20, 1, 'owner', 0)`,
			`INSERT INTO departed_members (conv_id, user_id, role, joined_at, read_seq, delivered_seq, left_at, pos)
				VALUES (20, 2, 'member', 0, 0, 0, 0, 7)`,
			`INSERT INTO messages (id, conv_id, seq, sender_id, client_id, text, sent_at, pos)
				VALUES (101, 10, 1, 1, 'a', 'mine', 0, 4), (102, 10, 2, 3, 'b', 'carol was here', 0, 5),
				(103, 10, 3, 1, 'c', 'mine too', 0, 6), (104, 20, 1, 2, 'd', 'bob was here', 0, 8)`,
			`UPDATE positions SET pos = 8`,
		} {
			if _, err := db.ExecContext(t.Context(), stmt); err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
		}
		if err := db.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}

		s, err := Open(t.Context(), path, Options{})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		var indexes int
		if err := s.r.QueryRowContext(t.Context(), `SELECT count(*) FROM sqlite_schema WHERE name = 'messages_by_sender'`).Scan(&indexes); err != nil || indexes != 0 {
			t.Errorf("messages_by_sender: %d, %v; want it dropped", indexes, err)
		}
		for _, c := range []struct {
			user chat.UserID
			want []chat.MessageID
		}{
			{1, []chat.MessageID{101, 103}},
			{2, []chat.MessageID{104}},
			{3, []chat.MessageID{102}},
		} {
			msgs, err := s.ListSentMessages(t.Context(), c.user, chat.SentCursor{}, 10)
			if err != nil {
				t.Fatalf("ListSentMessages(%v): %v", c.user, err)
			}
			var got []chat.MessageID
			for _, m := range msgs {
				got = append(got, m.ID)
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("user %v's messages = %v, want %v", c.user, got, c.want)
			}
		}
		gone, err := s.TombstoneSent(t.Context(), 3, time.UnixMilli(1), 10)
		if err != nil || len(gone) != 1 || gone[0].ID != 102 || gone[0].Pos != 9 {
			t.Errorf("TombstoneSent(carol) = %+v, %v; want message 102 at position 9", gone, err)
		}
	})
}
