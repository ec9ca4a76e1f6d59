package core_test

import (
	"context"
	"path/filepath"
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
	bus, err := natsbus.New(nc, natsbus.Options{Prefix: "settingsctx"})
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu  sync.Mutex
		got []chat.EventKind
	)
	unsubscribe, err := bus.Subscribe(context.Background(), func(e chat.Event) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, e.Kind)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(unsubscribe)

	ids := chattest.NewIDs()
	alice, bob := chattest.MustCreateUser(t, s, ids, "alice"), chattest.MustCreateUser(t, s, ids, "bob")
	gen, err := snowflake.New(1, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	svc := core.New(core.Deps{Store: s, Bus: bus, IDs: gen, People: cancelAfterCommit{s, cancel}}, core.Options{})
	if err := svc.SetBlock(ctx, core.Principal{User: alice.ID}, bob.ID, true); err != nil {
		t.Fatal(err)
	}
	if ctx.Err() == nil {
		t.Fatal("the store did not cancel the caller's context")
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[0] != chat.EventSettings || got[1] != chat.EventBlocksChanged {
		t.Errorf("events published for the block: %v, want [settings blocks_changed]", got)
	}
	if st := bus.Stats(); st.Gaps != 0 {
		t.Errorf("the bus counted %d gaps: an event was given up", st.Gaps)
	}
}
