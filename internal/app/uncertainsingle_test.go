package app_test

import (
	"log/slog"
	"net"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/internal/app"
	"github.com/natter-chat/natter/internal/chattest"
)

// A single node on PostgreSQL with the in-process bus: an edit whose
// COMMIT reached PostgreSQL but whose answer was lost is stored, yet no
// event ever announces it. The node's own clients must then be told to
// reconnect before any frame carries a cursor at or past the edit, so that
// their catch-up from the cursor they saved brings it; without that, the
// next frames move their cursors past a change they never got, and they
// never get it.
func TestSingleNode_UncertainCommitMakesClientsCatchUp(t *testing.T) {
	t.Parallel()
	pgURL, schema := chattest.PostgresSchema(t, "natter_single_")
	u, err := url.Parse(pgURL)
	if err != nil {
		t.Fatal(err)
	}
	target := u.Host
	if u.Hostname() == "" {
		t.Skip("NATTER_TEST_POSTGRES_URL names no TCP host to put a proxy in front of")
	}
	if u.Port() == "" {
		target = net.JoinHostPort(u.Hostname(), "5432")
	}
	cutter := startCommitCutter(t, target)
	u.Host = cutter.ln.Addr().String()
	tl := &testLog{t: t}
	t.Cleanup(tl.stop) // runs after the node has stopped
	n := startNode(t, "", func(cfg *app.Config) {
		cfg.Store, cfg.StoreSchema = u.String(), schema
		cfg.Bus = "" // the in-process bus
		cfg.Logger = slog.New(slog.NewTextHandler(tl, &slog.HandlerOptions{Level: slog.LevelWarn}))
	})

	alice, _ := n.user(t, "alice")
	o := newObserver(t, n)
	group, err := alice.CreateGroup(ctxT(t), "uncertain", []string{o.bobID})
	if err != nil {
		t.Fatal(err)
	}
	o.connect(t)
	_, cursor := syncStream(t, o.conn, 0)
	first, err := alice.Send(ctxT(t), group.ID, "first", "before the uncertain edit")
	if err != nil {
		t.Fatal(err)
	}
	waitMessages(t, o.in, "bob to get alice's message", group.ID, 1, 20*time.Second)

	const marker = "edited-at-an-uncertain-commit"
	cutter.arm(marker)
	_, err = alice.Edit(ctxT(t), group.ID, first.Message.ID, marker)
	if code := client.ErrorCode(err); code != "unavailable" {
		t.Fatalf("the edit whose commit answer was lost returned %v (code %q), want code unavailable", err, code)
	}
	if n := cutter.cutCount(); n != 1 {
		t.Fatalf("the proxy cut %d commits, want 1", n)
	}
	// The edit is stored (the COMMIT reached the server).
	editPos := storedEditPos(t, alice, group.ID, first.Message.ID, marker)

	// Frames keep coming to bob (carol's messages). He must be told to
	// reconnect, and no frame he got may carry a cursor at or past the
	// edit, which he never got live.
	stopChatter := chatter(t, o.chat, o.ticks, "tick")
	defer stopChatter()
	eventually(t, 30*time.Second, "bob to be told to reconnect", func() bool {
		return slices.ContainsFunc(o.in.frames(), func(f client.ServerFrame) bool {
			return f.Type == client.TypeReconnect || f.Cursor >= editPos
		})
	})
	stopChatter()
	frames := o.in.frames()
	for _, f := range frames {
		if f.Type == client.TypeMessageUpdated {
			t.Fatalf("bob got a %s frame although the edit's event was never published", f.Type)
		}
		if f.Cursor >= editPos {
			t.Fatalf("bob got a %s frame with cursor %d, at or past the unpublished edit at %d", f.Type, f.Cursor, editPos)
		}
	}
	if reconnectFrameIndex(frames) < 0 {
		t.Fatal("bob was not told to reconnect")
	}

	// He reconnects and catches up from the highest cursor he was given:
	// the sync brings the edit.
	saved := max(cursor, cursorOf(frames))
	again, _ := connect(t, o.bob)
	changes, _ := syncStream(t, again, saved)
	if !slices.ContainsFunc(changes, func(ch client.Change) bool {
		return ch.Message != nil && ch.Message.ID == first.Message.ID && ch.Message.Text == marker
	}) {
		t.Fatalf("the sync from bob's cursor %d did not bring the edit at %d (%d changes)", saved, editPos, len(changes))
	}
}
