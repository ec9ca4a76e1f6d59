package app_test

import (
	"bytes"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/internal/app"
)

// commitCutter forwards TCP connections to PostgreSQL and, once armed with
// a marker, breaks the connection whose client sent the marker right after
// that client's next COMMIT has reached the server: the transaction
// commits, and the node never hears so (an uncertain commit).
type commitCutter struct {
	target string
	ln     net.Listener

	mu     sync.Mutex
	marker []byte // armed while non-nil
	cuts   int
}

func startCommitCutter(t *testing.T, target string) *commitCutter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &commitCutter{target: target, ln: ln}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.DialTimeout("tcp", target, 5*time.Second)
			if err != nil {
				_ = in.Close()
				continue
			}
			var mute atomic.Bool // set: the server's answers no longer reach the client
			wg.Go(func() { back(in, out, &mute); _ = in.Close(); _ = out.Close() })
			wg.Go(func() { p.forward(out, in, &mute); _ = in.Close(); _ = out.Close() })
		}
	})
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	return p
}

// arm makes the next COMMIT of the connection that sends marker the last
// thing that connection does.
func (p *commitCutter) arm(marker string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.marker = []byte(marker)
}

// forward copies the client's bytes to the server, watching for the marker
// and then for a COMMIT.
func (p *commitCutter) forward(server, clientConn net.Conn, mute *atomic.Bool) {
	buf := make([]byte, 64<<10)
	marked := false
	for {
		n, err := clientConn.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			p.mu.Lock()
			if p.marker != nil && bytes.Contains(chunk, p.marker) {
				marked, p.marker = true, nil
			}
			p.mu.Unlock()
			commit := marked && bytes.Contains(bytes.ToLower(chunk), []byte("commit\x00"))
			if commit {
				mute.Store(true) // the COMMIT's answer must not reach the node
			}
			if _, werr := server.Write(chunk); werr != nil {
				return
			}
			if commit {
				// Let the server read and run the COMMIT, then break the
				// connection.
				time.Sleep(300 * time.Millisecond)
				p.mu.Lock()
				p.cuts++
				p.mu.Unlock()
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// back copies the server's bytes to the client until mute is set.
func back(clientConn, server net.Conn, mute *atomic.Bool) {
	buf := make([]byte, 64<<10)
	for {
		n, err := server.Read(buf)
		if n > 0 && !mute.Load() {
			if _, werr := clientConn.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *commitCutter) cutCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cuts
}

// An edit whose COMMIT reached PostgreSQL but whose answer was lost is
// stored but never published. The node then reports a loss on the bus, so
// that the other nodes' clients are told to reconnect (and catch up from
// the store) before any frame carries a cursor past the edit; without
// that, their cursors would move past a change they never got.
func TestCluster_UncertainCommitMakesClientsCatchUp(t *testing.T) {
	t.Parallel()
	eachNATS(t, func(t *testing.T, c *cluster) {
		cutter := startCommitCutter(t, c.pgHostPort(t))
		u, err := url.Parse(c.pgURL)
		if err != nil {
			t.Fatal(err)
		}
		u.Host = cutter.ln.Addr().String()
		a := c.start(t, func(cfg *app.Config) { cfg.Store = u.String() })
		b := c.start(t)
		alice, _ := a.user(t, "alice")
		o := newObserver(t, b)
		group, err := alice.CreateGroup(ctxT(t), "uncertain", []string{o.bobID})
		if err != nil {
			t.Fatal(err)
		}
		o.connect(t)
		first, err := alice.Send(ctxT(t), group.ID, "first", "before the uncertain edit")
		if err != nil {
			t.Fatal(err)
		}
		waitMessages(t, o.in, "bob on B to get alice's message from A", group.ID, 1, 20*time.Second)

		const marker = "edited-at-an-uncertain-commit"
		cut := len(o.in.frames())
		cutter.arm(marker)
		if _, err := alice.Edit(ctxT(t), group.ID, first.Message.ID, marker); err == nil {
			t.Fatal("the edit whose commit answer was cut succeeded")
		}
		if cutter.cutCount() != 1 {
			t.Fatalf("the proxy cut %d commits, want 1", cutter.cutCount())
		}
		// The edit is stored (the COMMIT reached the server).
		editPos := storedEditPos(t, alice, group.ID, first.Message.ID, marker)

		// Frames keep coming to bob (carol's messages); he must get the
		// edit live or be told to reconnect, and no frame before that may
		// carry a cursor at or past the edit.
		stopChatter := chatter(t, o.chat, o.ticks, "tick")
		defer stopChatter()
		eventually(t, 30*time.Second, "bob to get the edit live or be told to reconnect", func() bool {
			for _, f := range o.in.frames()[cut:] {
				if f.Type == client.TypeReconnect {
					return true
				}
				if m, err := f.Msg(); err == nil && m != nil && f.Type == client.TypeMessageUpdated && m.Text == marker {
					return true
				}
			}
			return false
		})
		stopChatter()
		for _, f := range o.in.frames()[cut:] {
			if f.Type == client.TypeReconnect {
				break
			}
			if m, err := f.Msg(); err == nil && m != nil && f.Type == client.TypeMessageUpdated && m.Text == marker {
				break
			}
			if f.Cursor >= editPos {
				t.Fatalf("bob got a %s frame with cursor %d, at or past the unpublished edit at %d, before being told to reconnect", f.Type, f.Cursor, editPos)
			}
		}
	})
}

// storedEditPos waits until the store holds message id of conv with text
// (an edit whose COMMIT reached the server although its answer was lost)
// and returns the edit's change position.
func storedEditPos(t testing.TB, c *client.Client, conv, id, text string) int64 {
	t.Helper()
	var pos int64
	eventually(t, 20*time.Second, "the edit to be readable from the store", func() bool {
		page, err := c.History(ctxT(t), conv, client.HistoryQuery{Limit: 10})
		if err != nil {
			return false
		}
		for _, m := range page.Messages {
			if m.ID == id && m.Text == text {
				pos = m.Pos
				return true
			}
		}
		return false
	})
	return pos
}
