package natsbus

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/natstest"
)

// Short periods, so that expiry takes about a second; correctness never
// depends on them, only how long the tests take.
const (
	testRefresh  = 200 * time.Millisecond
	testTTL      = time.Second
	testGrace    = 400 * time.Millisecond
	testDebounce = 100 * time.Millisecond
	// patience is how long a test waits for something that must happen,
	// beyond when it is due.
	patience = 10 * time.Second
)

const alice, bob, sentinel chat.UserID = 1, 2, 1 << 40

// node is a Presence on a connection of its own, with a watcher.
type node struct {
	nc        *nats.Conn
	p         *Presence
	got       chan chat.PresenceState
	sentinels chat.UserID // sentinel users this node has connected
}

func (env *testEnv) node(t *testing.T, name string, tune ...func(*PresenceOptions)) *node {
	t.Helper()
	nc := env.connect(t)
	opts := PresenceOptions{
		Node: name, Bucket: env.bucket, Refresh: testRefresh, TTL: testTTL, Grace: testGrace, Debounce: testDebounce,
		noMarkers: env.noMarkers,
	}
	for _, f := range tune {
		f(&opts)
	}
	p, err := NewPresence(context.Background(), nc, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	n := &node{nc: nc, p: p, got: make(chan chat.PresenceState, 10_000)}
	if _, err := p.Watch(context.Background(), func(st chat.PresenceState) { n.got <- st }); err != nil {
		t.Fatal(err)
	}
	return n
}

func (n *node) set(t *testing.T, u chat.UserID, conn int64, s chat.Status) {
	t.Helper()
	if err := n.p.Set(context.Background(), u, conn, s); err != nil {
		t.Fatal(err)
	}
}

func (n *node) remove(t *testing.T, u chat.UserID, conn int64) {
	t.Helper()
	if err := n.p.Remove(context.Background(), u, conn); err != nil {
		t.Fatal(err)
	}
}

func (n *node) get(t *testing.T, u chat.UserID) chat.PresenceState {
	t.Helper()
	sts, err := n.p.Get(context.Background(), []chat.UserID{u})
	if err != nil {
		t.Fatal(err)
	}
	return sts[0]
}

// keys returns how many keys of u the node knows.
func (n *node) keys(u chat.UserID) int {
	n.p.mu.Lock()
	defer n.p.mu.Unlock()
	if us := n.p.users[u]; us != nil {
		return len(us.nodes)
	}
	return 0
}

// await returns the first announcement about u with status s, failing if
// another status of u is announced first or none comes within d.
func (n *node) await(t *testing.T, u chat.UserID, s chat.Status, d time.Duration) chat.PresenceState {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case st := <-n.got:
			if st.User != u {
				continue
			}
			if st.Status != s {
				t.Fatalf("user %d announced %s, want %s", u, st.Status, s)
			}
			return st
		case <-deadline:
			t.Fatalf("user %d never announced %s", u, s)
			return chat.PresenceState{}
		}
	}
}

// until returns every announcement of a user below sentinel made before a
// sentinel user, connected through via after the moment end, is
// announced, which must happen.
func (n *node) until(t *testing.T, via *node, end time.Time) []chat.PresenceState {
	t.Helper()
	time.Sleep(time.Until(end)) // nothing may happen before end: there is no event to wait for
	via.sentinels++
	mark := sentinel + via.sentinels
	via.set(t, mark, 1, chat.StatusOnline)
	var got []chat.PresenceState
	deadline := time.After(patience)
	for {
		select {
		case st := <-n.got:
			switch {
			case st.User == mark:
				return got
			case st.User < sentinel:
				got = append(got, st)
			}
		case <-deadline:
			t.Fatalf("sentinel never announced; got %v", got)
			return nil
		}
	}
}

func TestPresence_ConnectionOnOneNodeIsSeenByEveryNode(t *testing.T) {
	eachServer(t, true, func(t *testing.T, env *testEnv) {
		a, b := env.node(t, "a"), env.node(t, "b")
		a.set(t, alice, 1, chat.StatusOnline)
		for _, n := range []*node{a, b} {
			n.await(t, alice, chat.StatusOnline, patience)
		}
		if st := b.get(t, alice); st.Status != chat.StatusOnline {
			t.Errorf("node b Get(alice) = %+v, want online", st)
		}
		// A node started later reads the bucket before it returns.
		c := env.node(t, "c")
		if st := c.get(t, alice); st.Status != chat.StatusOnline {
			t.Errorf("node c Get(alice) = %+v, want online", st)
		}
		if st := c.get(t, bob); st != (chat.PresenceState{User: bob, Status: chat.StatusOffline}) {
			t.Errorf("node c Get(bob) = %+v, want offline, never seen", st)
		}

		closed := time.Now()
		a.remove(t, alice, 1)
		var last chat.PresenceState
		for _, n := range []*node{a, b, c} {
			st := n.await(t, alice, chat.StatusOffline, testGrace+patience)
			if d := time.Since(closed); d < testGrace {
				t.Errorf("offline after %v, before Grace (%v)", d, testGrace)
			}
			if st.LastSeen.Before(closed.Add(-time.Second)) || st.LastSeen.After(time.Now()) {
				t.Errorf("offline LastSeen %v, want about %v", st.LastSeen, closed)
			}
			if got := n.get(t, alice); got != st {
				t.Errorf("Get = %+v, announced %+v", got, st)
			}
			last = st
		}
		// A node that never saw alice online reads her LastSeen from the
		// bucket, as recorded by the node she left.
		d := env.node(t, "d")
		waitUntil(t, patience, "LastSeen never reached the bucket", func() bool { return !d.get(t, alice).LastSeen.IsZero() })
		if st := d.get(t, alice); st.Status != chat.StatusOffline || st.LastSeen.Sub(last.LastSeen).Abs() > time.Second {
			t.Errorf("node d Get(alice) = %+v, want offline, last seen about %v", st, last.LastSeen)
		}
	})
}

func TestPresence_StatusCombinesEveryNode(t *testing.T) {
	eachServer(t, true, func(t *testing.T, env *testEnv) {
		a, b := env.node(t, "a"), env.node(t, "b")
		a.set(t, alice, 1, chat.StatusOnline)
		for _, n := range []*node{a, b} {
			n.await(t, alice, chat.StatusOnline, patience)
		}
		b.set(t, alice, 2, chat.StatusAway) // changes nothing: she is online on a
		left := time.Now()
		a.remove(t, alice, 1) // the online device leaves; the away one stays
		for _, n := range []*node{a, b} {
			st := n.await(t, alice, chat.StatusAway, patience)
			if st.LastSeen.Before(left.Add(-time.Second)) || st.LastSeen.After(time.Now()) {
				t.Errorf("away LastSeen %v, want about %v", st.LastSeen, left)
			}
		}
		b.set(t, alice, 2, chat.StatusOnline)
		a.await(t, alice, chat.StatusOnline, patience)
	})
}

func TestPresence_FlappingWithinGraceAnnouncesNoOffline(t *testing.T) {
	eachServer(t, true, func(t *testing.T, env *testEnv) {
		a, b := env.node(t, "a"), env.node(t, "b")
		a.set(t, alice, 1, chat.StatusOnline)
		for _, n := range []*node{a, b} {
			n.await(t, alice, chat.StatusOnline, patience)
		}
		// The device disconnects and, once both nodes have seen her last
		// key go (Grace starts), reconnects through the other node; again
		// and again, each time well within Grace.
		nodes := []*node{a, b} // connection c is on nodes[(c+1)%2]
		for conn := int64(2); conn <= 4; conn++ {
			// Out of the last Debounce window, so that Debounce cannot
			// hide an offline that Grace should have prevented.
			time.Sleep(testDebounce)
			nodes[conn%2].remove(t, alice, conn-1)
			waitUntil(t, patience, "the nodes never saw alice's last key go", func() bool {
				return a.keys(alice) == 0 && b.keys(alice) == 0
			})
			nodes[(conn+1)%2].set(t, alice, conn, chat.StatusOnline)
			waitUntil(t, patience, "the nodes never saw alice's new key", func() bool {
				return a.keys(alice) == 1 && b.keys(alice) == 1
			})
		}
		end := time.Now().Add(testGrace + testDebounce + testRefresh)
		for name, n := range map[string]*node{"a": a, "b": b} {
			for _, st := range n.until(t, a, end) {
				if st.User == alice {
					t.Errorf("node %s announced %+v while alice flapped within Grace", name, st)
				}
			}
		}
		if st := b.get(t, alice); st.Status != chat.StatusOnline {
			t.Errorf("Get(alice) = %+v, want online", st)
		}
	})
}

func TestPresence_ChangesWithinDebounceAnnounceTheLatestOnce(t *testing.T) {
	tests := []struct {
		name  string
		steps []chat.Status // written one after the other, at once
		want  []chat.Status // announced
	}{
		{"back to the announced state announces nothing more",
			[]chat.Status{chat.StatusAway, chat.StatusOnline, chat.StatusAway},
			[]chat.Status{chat.StatusAway}},
		{"the latest state is announced at the window's end",
			[]chat.Status{chat.StatusAway, chat.StatusOnline, chat.StatusAway, chat.StatusOnline},
			[]chat.Status{chat.StatusAway, chat.StatusOnline}},
	}
	// Long enough that the steps after the first surely land in the
	// window that the first one's announcement opens, on a busy machine.
	const debounce = 3 * time.Second
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eachServer(t, true, func(t *testing.T, env *testEnv) {
				b := env.node(t, "b", func(o *PresenceOptions) { o.Debounce, o.Refresh, o.TTL = debounce, time.Second, 10*time.Second })
				// Another node's key, written straight to the bucket so
				// that every step reaches it (a node folds quick changes).
				put := func(s chat.Status) {
					if _, err := b.p.kv.Put(context.Background(), presenceKey(alice, "x"), []byte(s)); err != nil {
						t.Fatal(err)
					}
				}
				put(chat.StatusOnline)
				b.await(t, alice, chat.StatusOnline, patience)
				time.Sleep(debounce) // out of the window: the next change is announced at once
				start := time.Now()
				// The first step, out of the window, is announced at once;
				// wait for it, so that the node cannot fold it with the
				// next ones (it would, if they all arrived together).
				put(tt.steps[0])
				b.await(t, alice, tt.steps[0], patience)
				for _, s := range tt.steps[1:] {
					put(s)
				}
				got := []chat.Status{tt.steps[0]}
				var last time.Time
				for _, st := range b.until(t, b, start.Add(debounce+testRefresh)) {
					if st.User == alice {
						got = append(got, st.Status)
						last = time.Now()
					}
				}
				if !slices.Equal(got, tt.want) {
					t.Errorf("announced %v, want %v", got, tt.want)
				}
				if len(got) > 1 && last.Sub(start) < debounce {
					t.Errorf("second announcement %v after the first change, before the window's end", last.Sub(start))
				}
			})
		})
	}
}

func TestPresence_DeadNodesUsersExpire(t *testing.T) {
	eachServer(t, true, func(t *testing.T, env *testEnv) {
		a, b := env.node(t, "a"), env.node(t, "b")
		a.set(t, alice, 1, chat.StatusOnline)
		b.await(t, alice, chat.StatusOnline, patience)
		// While a lives, its refreshes keep alice online well past TTL.
		for _, st := range b.until(t, b, time.Now().Add(2*testTTL)) {
			if st.User == alice {
				t.Fatalf("alice announced %+v while her node lived", st)
			}
		}
		// a dies: it stops refreshing and deletes nothing. Its last refresh
		// was before Close began (which may take a while on a busy machine).
		died := time.Now()
		a.p.Close()
		a.nc.Close()
		st := b.await(t, alice, chat.StatusOffline, testTTL+testGrace+patience)
		if d := time.Since(died); d < testTTL+testGrace-testRefresh {
			t.Errorf("offline %v after the node died, want at least TTL+Grace-Refresh = %v", d, testTTL+testGrace-testRefresh)
		}
		if st.LastSeen.Before(died.Add(-time.Second)) || st.LastSeen.After(died.Add(time.Second)) {
			t.Errorf("LastSeen %v, want about when the node died (%v)", st.LastSeen, died)
		}
		// The survivors recorded it in the bucket for nodes that start later.
		c := env.node(t, "c")
		waitUntil(t, patience, "LastSeen of the dead node's user never reached the bucket", func() bool {
			got := c.get(t, alice)
			return got.Status == chat.StatusOffline && !got.LastSeen.IsZero()
		})
	})
}

func TestPresence_SetRejectsBadStatus(t *testing.T) {
	env := newEnv(t, natstest.Start(t), false)
	n := env.node(t, "a")
	for _, s := range []chat.Status{chat.StatusOffline, "", "busy"} {
		if err := n.p.Set(context.Background(), alice, 1, s); chat.ErrorCode(err) != chat.CodeInvalidArgument {
			t.Errorf("Set(%q) = %v, want %s", s, err, chat.CodeInvalidArgument)
		}
	}
	if st := n.get(t, alice); st.Status != chat.StatusOffline {
		t.Errorf("Get(alice) = %+v, want offline", st)
	}
}

func TestNewPresence_RejectsBadOptionsAndFillsDefaults(t *testing.T) {
	env := newEnv(t, natstest.Start(t), false)
	nc := env.connect(t)
	tests := []struct {
		name string
		opts PresenceOptions
	}{
		{"TTL not above Refresh", PresenceOptions{Refresh: time.Second, TTL: time.Second}},
		{"node id with a dot", PresenceOptions{Node: "a.b"}},
		{"bad bucket", PresenceOptions{Bucket: "a b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.opts.Bucket == "" {
				tt.opts.Bucket = env.bucket
			}
			if _, err := NewPresence(context.Background(), nc, tt.opts); chat.ErrorCode(err) != chat.CodeInvalidArgument {
				t.Errorf("NewPresence = %v, want %s", err, chat.CodeInvalidArgument)
			}
		})
	}
	var o PresenceOptions
	if err := o.fill(); err != nil {
		t.Fatal(err)
	}
	if o.Node == "" || o.Bucket != "natter_presence" || o.Refresh != 5*time.Second || o.TTL != 15*time.Second ||
		o.Grace != 5*time.Second || o.Debounce != time.Second {
		t.Errorf("defaults = %+v", o)
	}
}

func TestPresence_CloseStopsEverythingAndLaterCallsFail(t *testing.T) {
	env := newEnv(t, natstest.Start(t), false)
	nc := env.connect(t)
	// The connection's first request starts its response subscription,
	// which lives as long as the connection: start it before counting.
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.AccountInfo(context.Background()); err != nil {
		t.Fatal(err)
	}
	base, _ := ours()
	p, err := NewPresence(context.Background(), nc, PresenceOptions{Bucket: env.bucket, Refresh: testRefresh, TTL: testTTL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 5 {
		if _, err := p.Watch(ctx, func(chat.PresenceState) {}); err != nil {
			t.Fatal(err)
		}
		_ = p.Set(ctx, chat.UserID(i+1), 1, chat.StatusOnline)
	}
	waitUntil(t, patience, "this node never saw its own keys", func() bool {
		sts, _ := p.Get(ctx, []chat.UserID{5})
		return sts[0].Status == chat.StatusOnline
	})
	if n, _ := ours(); n < base+shardCount+2+5+1 {
		_, stacks := ours()
		t.Fatalf("%d goroutines before Close, want at least %d: the count misses some:\n%s", n, base+shardCount+2+5+1, stacks)
	}
	p.Close()
	p.Close()
	waitGoroutines(t, base)
	for name, err := range map[string]error{
		"Set":    p.Set(ctx, alice, 1, chat.StatusOnline),
		"Remove": p.Remove(ctx, alice, 1),
		"Get":    func() error { _, err := p.Get(ctx, []chat.UserID{alice}); return err }(),
		"Watch":  func() error { _, err := p.Watch(ctx, func(chat.PresenceState) {}); return err }(),
	} {
		if chat.ErrorCode(err) != chat.CodeUnavailable || !errors.Is(err, errClosed) {
			t.Errorf("%s after Close = %v, want unavailable", name, err)
		}
	}
}

func TestPresence_CancelAndContextStopWatchers(t *testing.T) {
	env := newEnv(t, natstest.Start(t), false)
	n := env.node(t, "a")
	calls := make(chan chat.PresenceState, 10)
	cancel, err := n.p.Watch(context.Background(), func(st chat.PresenceState) { calls <- st })
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	cancel() // idempotent
	ctx, stop := context.WithCancel(context.Background())
	ctxCalls := make(chan chat.PresenceState, 10)
	cancel2, err := n.p.Watch(ctx, func(st chat.PresenceState) { ctxCalls <- st })
	if err != nil {
		t.Fatal(err)
	}
	defer cancel2()
	stop()
	waitUntil(t, patience, "a watcher outlived its context", func() bool {
		n.p.mu.Lock()
		defer n.p.mu.Unlock()
		return len(n.p.watchers) == 1 // the node's own
	})
	n.set(t, alice, 1, chat.StatusOnline)
	n.await(t, alice, chat.StatusOnline, patience)
	if len(calls) != 0 || len(ctxCalls) != 0 {
		t.Errorf("stopped watchers were called %d and %d times", len(calls), len(ctxCalls))
	}
}
