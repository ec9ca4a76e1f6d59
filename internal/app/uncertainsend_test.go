package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/internal/app"
)

// A group commit of several sends whose COMMIT reached PostgreSQL but whose
// answer was lost: the messages are stored, but the node cannot know it.
// Every sender must get the retryable error (never an ack, never a hang),
// a retry with the same client id must return the stored message as a
// duplicate (same id and seq: the batch is not stored twice), and the
// other node's clients, who never get these messages live, must be told
// to reconnect before any frame's cursor passes them, so that their
// catch-up brings them, each once and in order.
func TestCluster_UncertainCommitOfASendBatch(t *testing.T) {
	t.Parallel()
	eachNATS(t, func(t *testing.T, c *cluster) {
		cutter := startCommitCutter(t, c.pgHostPort(t))
		// Node A's store connections carry a name of their own, so that the
		// test can see them waiting in pg_stat_activity.
		appName := "natter_a_" + c.name
		u, err := url.Parse(c.pgURL)
		if err != nil {
			t.Fatal(err)
		}
		u.Host = cutter.ln.Addr().String()
		q := u.Query()
		q.Set("application_name", appName)
		u.RawQuery = q.Encode()
		a := c.start(t, func(cfg *app.Config) { cfg.Store = u.String() })
		b := c.start(t)

		alice, _ := a.user(t, "alice")
		dave, daveID := a.user(t, "dave")
		erin, erinID := a.user(t, "erin")
		o := newObserver(t, b)
		group, err := alice.CreateGroup(ctxT(t), "uncertain batch", []string{daveID, erinID, o.bobID})
		if err != nil {
			t.Fatal(err)
		}
		o.connect(t)
		_, cursor := syncStream(t, o.conn, 0)
		if _, err := alice.Send(ctxT(t), group.ID, "first", "before the uncertain batch"); err != nil {
			t.Fatal(err)
		}
		waitMessages(t, o.in, "bob on B to get alice's message from A", group.ID, 1, 20*time.Second)

		// Each sender has a WebSocket to A; a connection's frames are
		// handled in order, and a send frame is queued for the group
		// commit before the next frame is read, so the pong that answers
		// a ping sent after the sends says they are all queued.
		const marker = "sent-at-an-uncertain-commit"
		type sender struct {
			name string
			c    *client.Client
			ws   *refReader
		}
		senders := []sender{{name: "alice", c: alice}, {name: "dave", c: dave}, {name: "erin", c: erin}}
		for i := range senders {
			r := dialRaw(t, a, rawOptions{token: senders[i].c.Tokens().AccessToken})
			if f := r.next(t); f.Type != "ready" {
				t.Fatalf("%s's first frame is %s, want ready", senders[i].name, f.Type)
			}
			senders[i].ws = &refReader{r: r, got: map[string]client.ServerFrame{}}
		}
		clientIDs := func(s sender) []string { return []string{"batch-" + s.name + "-1", "batch-" + s.name + "-2"} }
		textOf := func(clientID string) string { return marker + " " + clientID }

		// Hold A's group commit still (see holdCommits), queue all six
		// sends behind it, then let them commit in one transaction, whose
		// COMMIT answer the proxy swallows.
		hold := holdCommits(t, c, appName)
		for _, s := range senders {
			for _, id := range clientIDs(s) {
				s.ws.frame(t, map[string]string{"type": "send", "ref": id, "conv": group.ID, "client_id": id, "text": textOf(id)})
			}
			s.ws.frame(t, map[string]string{"type": "ping", "ref": "queued"})
		}
		for _, s := range senders {
			s.ws.await(t, 30*time.Second, "queued")
		}
		if !hold.holding(t) {
			t.Fatal("A's group commit moved on before the sends were queued (its watermark read timed out): the machine is too slow for this test")
		}
		cut := len(o.in.frames())
		cutter.arm(marker)
		hold.release(t)

		for _, s := range senders {
			got := s.ws.await(t, 30*time.Second, clientIDs(s)...)
			for _, id := range clientIDs(s) {
				if f := got[id]; f.Type != client.TypeError || f.Code != "unavailable" {
					t.Errorf("%s's send %s whose commit answer was lost got a %s frame (code %q), want an error with code unavailable", s.name, id, f.Type, f.Code)
				}
			}
		}
		if n := cutter.cutCount(); n != 1 {
			t.Fatalf("the proxy cut %d commits, want 1 (all six sends in one transaction)", n)
		}

		// Every message is stored once, after "first", in one run of seqs.
		var stored map[string]client.Message
		eventually(t, 20*time.Second, "the six messages to be readable from the store", func() bool {
			page, err := alice.History(ctxT(t), group.ID, client.HistoryQuery{Limit: 50})
			if err != nil {
				return false
			}
			stored = byClientID(t, page.Messages)
			return len(page.Messages) == 7
		})
		var batchPos int64
		for _, s := range senders {
			for _, id := range clientIDs(s) {
				m, ok := stored[id]
				switch {
				case !ok:
					t.Fatalf("message %s is not stored", id)
				case m.Seq < 2 || m.Seq > 7:
					t.Errorf("message %s has seq %d, want one of 2..7", id, m.Seq)
				}
				if batchPos == 0 || m.Pos < batchPos {
					batchPos = m.Pos
				}
			}
		}

		// A retry with the same client id finds the stored message.
		for _, s := range senders {
			for _, id := range clientIDs(s) {
				res, err := s.c.Send(ctxT(t), group.ID, id, textOf(id))
				if err != nil {
					t.Fatalf("%s's retry of %s: %v", s.name, id, err)
				}
				if want := stored[id]; !res.Duplicate || res.Message.ID != want.ID || res.Message.Seq != want.Seq {
					t.Errorf("%s's retry of %s: duplicate %v, id %s, seq %d; want the stored message (id %s, seq %d) as a duplicate",
						s.name, id, res.Duplicate, res.Message.ID, res.Message.Seq, want.ID, want.Seq)
				}
			}
		}

		// Bob on B never gets them live: he must be told to reconnect, and
		// no frame before that may carry a cursor at or past them, however
		// many frames come (carol's chatter).
		stopChatter := chatter(t, o.chat, o.ticks, "tick")
		defer stopChatter()
		eventually(t, 30*time.Second, "bob on B to be told to reconnect", func() bool {
			return slices.ContainsFunc(o.in.frames()[cut:], func(f client.ServerFrame) bool {
				return f.Type == client.TypeReconnect || f.Cursor >= batchPos
			})
		})
		stopChatter()
		frames := o.in.frames()
		for i, f := range frames[cut:] {
			if f.Type == client.TypeReconnect {
				frames = frames[:cut+i]
				break
			}
			if f.Cursor >= batchPos {
				t.Fatalf("bob got a %s frame with cursor %d, at or past the unpublished batch at %d, before being told to reconnect", f.Type, f.Cursor, batchPos)
			}
		}

		// He reconnects and catches up from the cursor he saved: with what
		// he got live, he has every message once, in seq order.
		saved := max(cursor, cursorOf(frames))
		again, againIn := connect(t, o.bob)
		changes, _ := syncStream(t, again, saved)
		var live, caught []client.Message
		for _, f := range frames {
			if m, err := f.Msg(); err == nil && m != nil && f.Type == client.TypeMessage && m.Conv == group.ID {
				live = append(live, *m)
			}
		}
		for _, ch := range changes {
			if ch.Message != nil && ch.Message.Conv == group.ID {
				caught = append(caught, *ch.Message)
			}
		}
		checkCaughtUp(t, live, caught, stored)

		// The conversation goes on after the batch, and bob's new
		// connection gets it live with the next seq.
		after, err := alice.Send(ctxT(t), group.ID, "after", "after the uncertain batch")
		if err != nil {
			t.Fatal(err)
		}
		if after.Message.Seq != 8 {
			t.Errorf("the message after the batch has seq %d, want 8", after.Message.Seq)
		}
		got := waitMessages(t, againIn, "bob on B to get the message after the batch", group.ID, 1, 20*time.Second)
		if got[0].ID != after.Message.ID {
			t.Errorf("bob's new connection got %s live, want the message after the batch", got[0].ClientID)
		}
	})
}

// checkCaughtUp checks that the messages a client got live before it was
// told to reconnect, followed by those its catch-up brought, hold every
// stored message once and in seq order, as stored.
func checkCaughtUp(t *testing.T, live, caught []client.Message, stored map[string]client.Message) {
	t.Helper()
	var last int64
	for _, m := range caught {
		if m.Seq <= last {
			t.Errorf("the catch-up gave seq %d after %d: out of order or twice", m.Seq, last)
		}
		last = m.Seq
	}
	have := map[int64]client.Message{}
	for _, m := range slices.Concat(live, caught) {
		have[m.Seq] = m
	}
	for id, want := range stored {
		if m, ok := have[want.Seq]; !ok || m.ID != want.ID {
			t.Errorf("after catch-up bob lacks %s (seq %d)", id, want.Seq)
		}
	}
	if len(have) != len(stored) {
		t.Errorf("after catch-up bob has %d messages, want the %d stored", len(have), len(stored))
	}
}

// refReader reads a raw WebSocket's frames and keeps those that answer a
// ref, by ref.
type refReader struct {
	r   *rawWS
	got map[string]client.ServerFrame
}

// frame writes v as a JSON text frame.
func (rr *refReader) frame(t *testing.T, v any) {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	rr.r.send(t, string(data))
}

// await reads frames until one has answered each of refs, failing t after
// d, and returns the answers read so far.
func (rr *refReader) await(t *testing.T, d time.Duration, refs ...string) map[string]client.ServerFrame {
	t.Helper()
	deadline := time.After(d)
	for slices.ContainsFunc(refs, func(ref string) bool { _, ok := rr.got[ref]; return !ok }) {
		var data []byte
		select {
		case data = <-rr.r.frames:
		case <-rr.r.done:
			select {
			case data = <-rr.r.frames:
			default:
				t.Fatalf("connection ended (%v) while waiting for answers to %v", rr.r.err(), refs)
			}
		case <-deadline:
			t.Fatalf("not within %v: answers to %v", d, refs)
		}
		var f client.ServerFrame
		if err := json.Unmarshal(data, &f); err != nil {
			t.Fatalf("server sent a frame that is not JSON: %q", data)
		}
		var ref string
		if json.Unmarshal(f.Ref, &ref) == nil && ref != "" {
			rr.got[ref] = f
		}
	}
	return rr.got
}

// commitHold holds a node's group commit still: a transaction of the test
// takes the change positions table in ACCESS EXCLUSIVE mode, and the
// node's next watermark read (which runs on the group commit's goroutine,
// in queue order with the sends) waits for it. While that read waits, the
// node queues no other watermark read, so sends queued meanwhile are all
// taken into the one batch that follows it.
type commitHold struct {
	appName string
	tx      pgx.Tx
	watch   *pgx.Conn
}

// holdCommits starts holding the commits of the node whose store
// connections are named appName, and returns once its watermark read
// waits.
func holdCommits(t *testing.T, c *cluster, appName string) *commitHold {
	t.Helper()
	ctx := ctxT(t)
	lock, err := pgx.Connect(ctx, c.pgURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lock.Close(context.Background()) })
	watch, err := pgx.Connect(ctx, c.pgURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = watch.Close(context.Background()) })
	tx, err := lock.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	table := pgx.Identifier{c.schema, "positions"}.Sanitize()
	if _, err := tx.Exec(ctx, fmt.Sprintf("LOCK TABLE %s IN ACCESS EXCLUSIVE MODE", table)); err != nil {
		t.Fatal(err)
	}
	h := &commitHold{appName: appName, tx: tx, watch: watch}
	eventually(t, 20*time.Second, "node A's watermark read to wait for the test's lock", func() bool { return h.holding(t) })
	return h
}

// holding reports whether the node's watermark read still waits for the
// lock.
func (h *commitHold) holding(t *testing.T) bool {
	t.Helper()
	var n int
	err := h.watch.QueryRow(ctxT(t), `SELECT count(*) FROM pg_stat_activity
		WHERE application_name = $1 AND wait_event_type = 'Lock' AND query = 'SELECT pos FROM positions WHERE id = 1'`, h.appName).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// release lets the node's commits go on.
func (h *commitHold) release(t *testing.T) {
	t.Helper()
	if err := h.tx.Rollback(ctxT(t)); err != nil {
		t.Fatal(err)
	}
}
