package core_test

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/chattest"
	"github.com/natter-chat/natter/internal/core"
	"github.com/natter-chat/natter/internal/natsbus"
	"github.com/natter-chat/natter/internal/natstest"
	"github.com/natter-chat/natter/internal/snowflake"
	"github.com/natter-chat/natter/internal/sqlite"
)

// cancelAfterCommit is a PeopleStore whose SetRelation commits and then
// cancels the caller's context, as a client that goes away at that moment
// does (its request's context ends).
type cancelAfterCommit struct {
	chat.PeopleStore
	cancel context.CancelFunc
}

func (c cancelAfterCommit) SetRelation(ctx context.Context, owner, other chat.UserID, rel chat.Relation, on bool, at time.Time) (bool, error) {
	changed, err := c.PeopleStore.SetRelation(ctx, owner, other, rel, on, at)
	c.cancel()
	return changed, err
}

// A block whose client goes away right after the commit is still
// announced: the settings event (the user's other devices) and the
// old-release blocks_changed. On NATS, an event published under an ended
// context is given up and counted by every node as lost, so every node
// would also tell all its clients to reconnect.
func TestSettings_AChangeIsAnnouncedEvenIfTheClientGoesAwayAfterTheCommit(t *testing.T) {
	w := newGoneWorld(t)
	ctx, cancel := context.WithCancel(context.Background())
	svc := core.New(core.Deps{Store: w.store, Bus: w.bus, IDs: w.ids, People: cancelAfterCommit{w.store, cancel}}, core.Options{})
	if err := svc.SetBlock(ctx, core.Principal{User: w.alice}, w.bob, true); err != nil {
		t.Fatal(err)
	}
	if ctx.Err() == nil {
		t.Fatal("the store did not cancel the caller's context")
	}
	w.expect(t, chat.EventSettings, chat.EventBlocksChanged)
}

// revokeThenHangUp is a Store whose RevokeSession commits and then cancels
// the caller's context (a client that logs out and hangs up at once).
type revokeThenHangUp struct {
	chat.Store
	cancel context.CancelFunc
}

func (r revokeThenHangUp) RevokeSession(ctx context.Context, user chat.UserID, id chat.SessionID, now time.Time) error {
	err := r.Store.RevokeSession(ctx, user, id, now)
	r.cancel()
	return err
}

// Any change, not just settings: a revoked session is announced (its open
// connections on every node must close) even if the caller has gone.
func TestPublish_AStoredChangeIsAnnouncedEvenIfTheCallerHasGone(t *testing.T) {
	w := newGoneWorld(t)
	ctx, cancel := context.WithCancel(context.Background())
	svc := core.New(core.Deps{Store: revokeThenHangUp{w.store, cancel}, Bus: w.bus, IDs: w.ids, People: w.store}, core.Options{})
	now := time.Now()
	sess := chat.Session{ID: 777, User: w.alice, CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := w.store.CreateSession(context.Background(), sess, "refresh"); err != nil {
		t.Fatal(err)
	}
	if err := svc.RevokeSession(ctx, core.Principal{User: w.alice}, sess.ID); err != nil {
		t.Fatal(err)
	}
	if ctx.Err() == nil {
		t.Fatal("the store did not cancel the caller's context")
	}
	w.expect(t, chat.EventSessionRevoked)
}

// goneWorld is a SQLite store and a real NATS bus whose events are
// collected.
type goneWorld struct {
	store      *sqlite.Store
	bus        *natsbus.Bus
	ids        chat.IDGenerator
	alice, bob chat.UserID
	mu         sync.Mutex
	got        []chat.EventKind
}

func newGoneWorld(t *testing.T) *goneWorld {
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "natter.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	nc, err := nats.Connect(natstest.Start(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	bus, err := natsbus.New(nc, natsbus.Options{Prefix: "gone"})
	if err != nil {
		t.Fatal(err)
	}
	w := &goneWorld{store: s, bus: bus}
	unsubscribe, err := bus.Subscribe(context.Background(), func(e chat.Event) {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.got = append(w.got, e.Kind)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(unsubscribe)
	ids := chattest.NewIDs()
	w.alice, w.bob = chattest.MustCreateUser(t, s, ids, "alice").ID, chattest.MustCreateUser(t, s, ids, "bob").ID
	if w.ids, err = snowflake.New(1, nil); err != nil {
		t.Fatal(err)
	}
	return w
}

// expect waits until the bus delivered as many events as want and checks
// them, and that none was given up (a gap).
func (w *goneWorld) expect(t *testing.T, want ...chat.EventKind) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		w.mu.Lock()
		n := len(w.got)
		w.mu.Unlock()
		if n >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !slices.Equal(w.got, want) {
		t.Errorf("events published: %v, want %v", w.got, want)
	}
	if st := w.bus.Stats(); st.Gaps != 0 {
		t.Errorf("the bus counted %d gaps: an event was given up", st.Gaps)
	}
}
