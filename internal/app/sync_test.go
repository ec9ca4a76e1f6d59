package app_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/internal/app"
)

// replica is what a device knows, rebuilt only from the sync stream.
type replica struct {
	msgs    map[string]client.Message // by id
	members map[string]client.Member  // by conv+"/"+user
	titles  map[string]string
	left    map[string]bool // conv+"/"+user
}

func newReplica() *replica {
	return &replica{msgs: map[string]client.Message{}, members: map[string]client.Member{}, titles: map[string]string{}, left: map[string]bool{}}
}

func (r *replica) apply(t testing.TB, c client.Change) {
	t.Helper()
	switch c.Kind {
	case "message":
		r.msgs[c.Message.ID] = *c.Message
	case "member":
		r.members[c.Member.Conv+"/"+c.Member.User] = *c.Member
		delete(r.left, c.Member.Conv+"/"+c.Member.User)
	case "member_left":
		delete(r.members, c.Member.Conv+"/"+c.Member.User)
		r.left[c.Member.Conv+"/"+c.Member.User] = true
	case "conversation":
		r.titles[c.Conversation.ID] = c.Conversation.Title
	default:
		t.Fatalf("unknown change kind %q", c.Kind)
	}
}

// catchUp pages the sync stream from cursor, checking order and
// uniqueness, and returns the new cursor.
func (r *replica) catchUp(t testing.TB, c *client.Client, cursor int64) (int64, int) {
	t.Helper()
	seen := map[int64]bool{}
	n := 0
	for {
		page, err := c.Changes(ctxT(t), cursor, 97)
		if err != nil {
			t.Fatalf("sync from %d: %v", cursor, err)
		}
		for _, ch := range page.Changes {
			if ch.Pos <= cursor || seen[ch.Pos] {
				t.Fatalf("change at pos %d after cursor %d: out of order or duplicated", ch.Pos, cursor)
			}
			seen[ch.Pos] = true
			cursor = ch.Pos
			r.apply(t, ch)
			n++
		}
		if page.Cursor != cursor {
			t.Fatalf("page cursor %d, last change at %d", page.Cursor, cursor)
		}
		if !page.HasMore {
			return cursor, n
		}
	}
}

func TestSync_OfflineDeviceCatchesUpExactlyAcrossAThousandMixedEvents(t *testing.T) {
	n := startNode(t, "")
	alice, _ := n.user(t, "alice")
	bob, bobID := n.user(t, "bob")
	_, carolID := n.user(t, "carol")
	group, err := alice.CreateGroup(ctxT(t), "g", []string{bobID})
	if err != nil {
		t.Fatal(err)
	}
	direct, err := alice.CreateDirect(ctxT(t), bobID)
	if err != nil {
		t.Fatal(err)
	}
	// Bob's device is in sync, then goes offline.
	rep := newReplica()
	cursor, _ := rep.catchUp(t, bob, 0)

	rng := rand.New(rand.NewPCG(1, 2))
	var ids []client.Message
	convs := []string{group.ID, direct.ID}
	carolIn := false
	for i := range 1000 {
		conv := convs[rng.IntN(2)]
		switch k := rng.IntN(10); {
		case k < 4 || len(ids) == 0:
			m, err := alice.Send(ctxT(t), conv, fmt.Sprint("c", i), fmt.Sprint("message ", i))
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, m.Message)
		case k == 4:
			m := ids[rng.IntN(len(ids))]
			if _, err := alice.Edit(ctxT(t), m.Conv, m.ID, fmt.Sprint("edited ", i)); err != nil && client.ErrorCode(err) != "conflict" {
				t.Fatal(err)
			}
		case k == 5:
			m := ids[rng.IntN(len(ids))]
			if _, err := alice.Delete(ctxT(t), m.Conv, m.ID); err != nil {
				t.Fatal(err)
			}
		case k == 6:
			m := ids[rng.IntN(len(ids))]
			if _, err := alice.React(ctxT(t), m.Conv, m.ID, []string{"👍", "🎉", "❤️"}[rng.IntN(3)], rng.IntN(3) > 0); err != nil && client.ErrorCode(err) != "conflict" {
				t.Fatal(err)
			}
		case k == 7:
			if _, err := alice.MarkRead(ctxT(t), conv, int64(rng.IntN(len(ids)+1))); err != nil {
				t.Fatal(err)
			}
		case k == 8:
			if _, err := alice.Rename(ctxT(t), group.ID, fmt.Sprint("title ", i)); err != nil {
				t.Fatal(err)
			}
		default:
			if carolIn {
				err = alice.RemoveMember(ctxT(t), group.ID, carolID)
			} else {
				_, err = alice.AddMembers(ctxT(t), group.ID, []string{carolID})
			}
			if err != nil {
				t.Fatal(err)
			}
			carolIn = !carolIn
		}
	}
	_, got := rep.catchUp(t, bob, cursor)
	if got == 0 {
		t.Fatal("no changes after 1,000 events")
	}
	// The replica now equals the server's state.
	for _, conv := range convs {
		for _, m := range historyAfter(t, bob, conv, 0) {
			r, ok := rep.msgs[m.ID]
			if !ok || r.Text != m.Text || r.Deleted != m.Deleted || r.Pos != m.Pos || fmt.Sprint(r.Reactions) != fmt.Sprint(m.Reactions) {
				t.Fatalf("message %s: replica %+v, server %+v", m.ID, r, m)
			}
		}
	}
	c, _ := bob.Conversation(ctxT(t), group.ID)
	if rep.titles[group.ID] != c.Title {
		t.Fatalf("replica title %q, server %q", rep.titles[group.ID], c.Title)
	}
	for _, m := range c.Members {
		if r, ok := rep.members[group.ID+"/"+m.User]; !ok || r.ReadSeq != m.ReadSeq || r.Role != m.Role {
			t.Fatalf("member %s: replica %+v, server %+v", m.User, r, m)
		}
	}
	if _, still := rep.members[group.ID+"/"+carolID]; still != carolIn {
		t.Fatalf("replica thinks carol in the group = %v, server %v", still, carolIn)
	}
	t.Logf("caught up %d changes for 1,000 events", got)
}

func TestSync_TooLongAGapAnswersResyncRequired(t *testing.T) {
	n := startNode(t, "", func(c *app.Config) { c.MaxReplay = 50 })
	alice, _ := n.user(t, "alice")
	bob, bobID := n.user(t, "bob")
	conv, err := alice.CreateDirect(ctxT(t), bobID)
	if err != nil {
		t.Fatal(err)
	}
	page, err := bob.Changes(ctxT(t), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 60 {
		if _, err := alice.Send(ctxT(t), conv.ID, fmt.Sprint(i), "x"); err != nil {
			t.Fatal(err)
		}
	}
	_, err = bob.Changes(ctxT(t), page.Cursor, 0)
	var ce *client.Error
	if client.ErrorCode(err) != "resync_required" || !errors.As(err, &ce) || ce.Status != 410 || ce.Cursor <= page.Cursor {
		t.Fatalf("sync over 60 changes with a replay limit of 50: %v; want 410 resync_required with a newer cursor", err)
	}
	// The same answer over the WebSocket.
	ws, _ := connect(t, bob)
	if _, err := ws.Changes(ctxT(t), page.Cursor, 0); client.ErrorCode(err) != "resync_required" {
		t.Fatalf("WebSocket sync: %v, want resync_required", err)
	}
	// After reloading history, the client continues from the cursor given.
	if all := historyAfter(t, bob, conv.ID, 0); len(all) != 60 {
		t.Fatalf("history has %d messages", len(all))
	}
	next, err := bob.Changes(ctxT(t), ce.Cursor, 0)
	if err != nil || len(next.Changes) != 0 {
		t.Fatalf("sync from the resync cursor: %+v, %v; want nothing new", next, err)
	}
	if _, err := alice.Send(ctxT(t), conv.ID, "after", "after the resync"); err != nil {
		t.Fatal(err)
	}
	next, err = bob.Changes(ctxT(t), ce.Cursor, 0)
	if err != nil || len(next.Changes) != 1 || next.Changes[0].Message.ClientID != "after" {
		t.Fatalf("sync after a new message: %+v, %v", next, err)
	}
}

func TestSync_RemovedMemberSeesTheirRemovalAndNothingLater(t *testing.T) {
	n := startNode(t, "")
	alice, _ := n.user(t, "alice")
	bob, bobID := n.user(t, "bob")
	conv, err := alice.CreateGroup(ctxT(t), "g", []string{bobID})
	if err != nil {
		t.Fatal(err)
	}
	page, _ := bob.Changes(ctxT(t), 0, 0)
	if err := alice.RemoveMember(ctxT(t), conv.ID, bobID); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := alice.Send(ctxT(t), conv.ID, fmt.Sprint(i), "secret"); err != nil {
			t.Fatal(err)
		}
	}
	after, err := bob.Changes(ctxT(t), page.Cursor, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Changes) != 1 || after.Changes[0].Kind != "member_left" || after.Changes[0].Member.User != bobID {
		t.Fatalf("removed member's sync: %+v; want only their member_left", after.Changes)
	}
}
