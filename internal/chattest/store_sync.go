package chattest

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/natter-chat/natter/internal/chat"
)

// memberKey identifies a membership.
type memberKey struct {
	conv chat.ConversationID
	user chat.UserID
}

// replica is what a client of the sync stream knows: the current state of
// everything it was told about.
type replica struct {
	convs    map[chat.ConversationID]chat.Conversation
	members  map[memberKey]chat.Member
	left     map[memberKey]chat.Member // member_left records
	messages map[chat.MessageID]chat.Message
}

func newReplica() *replica {
	return &replica{
		convs:    map[chat.ConversationID]chat.Conversation{},
		members:  map[memberKey]chat.Member{},
		left:     map[memberKey]chat.Member{},
		messages: map[chat.MessageID]chat.Message{},
	}
}

// apply records c, failing t if c is malformed: one payload, of its kind,
// at the change's position.
func (r *replica) apply(t testing.TB, c chat.Change) {
	t.Helper()
	payloads, pos := 0, int64(-1)
	if c.Message != nil {
		payloads, pos = payloads+1, c.Message.Pos
	}
	if c.Member != nil {
		payloads, pos = payloads+1, c.Member.Pos
	}
	if c.Conversation != nil {
		payloads, pos = payloads+1, c.Conversation.Pos
	}
	if payloads != 1 || pos != c.Pos {
		t.Fatalf("change %+v: want exactly one payload, with the change's Pos", c)
	}
	switch {
	case c.Kind == chat.ChangeMessage && c.Message != nil:
		r.messages[c.Message.ID] = *c.Message
	case c.Kind == chat.ChangeMember && c.Member != nil:
		k := memberKey{c.Member.Conv, c.Member.User}
		r.members[k] = *c.Member
		delete(r.left, k)
	case c.Kind == chat.ChangeMemberLeft && c.Member != nil:
		k := memberKey{c.Member.Conv, c.Member.User}
		r.left[k] = *c.Member
		delete(r.members, k)
	case c.Kind == chat.ChangeConversation && c.Conversation != nil:
		r.convs[c.Conversation.ID] = *c.Conversation
	default:
		t.Fatalf("change %+v: kind %q does not fit its payload", c, c.Kind)
	}
}

// changes returns everything r holds as changes, in position order.
func (r *replica) changes() []chat.Change {
	var out []chat.Change
	for _, c := range r.convs {
		out = append(out, chat.Change{Pos: c.Pos, Kind: chat.ChangeConversation, Conversation: &c})
	}
	for _, m := range r.members {
		out = append(out, chat.Change{Pos: m.Pos, Kind: chat.ChangeMember, Member: &m})
	}
	for _, m := range r.left {
		out = append(out, chat.Change{Pos: m.Pos, Kind: chat.ChangeMemberLeft, Member: &m})
	}
	for _, m := range r.messages {
		out = append(out, chat.Change{Pos: m.Pos, Kind: chat.ChangeMessage, Message: &m})
	}
	slices.SortFunc(out, func(a, b chat.Change) int { return cmp.Compare(a.Pos, b.Pos) })
	return out
}

// wantSameState fails t unless got holds what want holds. A conversation's
// LastSeq is not compared: it is not one of the conversation's own fields
// and moves without a change of the conversation. Nor are the positions
// of member_left records, which the suite cannot know.
func wantSameState(t testing.TB, what string, want, got *replica) {
	t.Helper()
	wantEqual(t, what+": conversations", want.convs, got.convs, cmpopts.IgnoreFields(chat.Conversation{}, "LastSeq"))
	wantEqual(t, what+": members", want.members, got.members)
	wantEqual(t, what+": messages", want.messages, got.messages)
	wantEqual(t, what+": member_left records", want.left, got.left, cmpopts.IgnoreFields(chat.Member{}, "Pos"))
}

// currentState reads what user's sync stream must have told them, as a
// replica: their conversations with members and messages as stored now,
// and left, the member_left records the caller expects.
func currentState(t testing.TB, s chat.Store, user chat.UserID, left map[memberKey]chat.Member) *replica {
	t.Helper()
	r := newReplica()
	convs, err := s.ListConversationIDs(t.Context(), user)
	mustNot(t, "ListConversationIDs", err)
	for _, id := range convs {
		c, err := s.GetConversation(t.Context(), id)
		mustNot(t, "GetConversation", err)
		r.convs[id] = c
		members, err := s.ListMembers(t.Context(), id)
		mustNot(t, "ListMembers", err)
		for _, m := range members {
			r.members[memberKey{m.Conv, m.User}] = m
		}
		for _, m := range listAll(t, s, id) {
			r.messages[m.ID] = m
		}
	}
	for k, m := range left {
		r.left[k] = m
	}
	return r
}

// syncChanges pages user's changes from after, limit at a time, into r
// until none is left, checking each page's shape, and returns the final
// cursor and every change read.
func syncChanges(t testing.TB, s chat.Store, user chat.UserID, after int64, limit int, r *replica) (int64, []chat.Change) {
	t.Helper()
	var all []chat.Change
	for {
		page, err := s.ListChanges(t.Context(), user, after, limit)
		mustNot(t, "ListChanges", err)
		if len(page.Changes) > limit || page.HasMore && len(page.Changes) != limit {
			t.Fatalf("ListChanges(after %d, limit %d) gave %d changes with HasMore %v", after, limit, len(page.Changes), page.HasMore)
		}
		cursor := after
		for _, c := range page.Changes {
			if c.Pos <= cursor {
				t.Fatalf("ListChanges(after %d): change at %d follows %d", after, c.Pos, cursor)
			}
			cursor = c.Pos
			r.apply(t, c)
		}
		if page.Cursor != cursor {
			t.Fatalf("ListChanges(after %d): Cursor %d, want %d (the last change's, or after)", after, page.Cursor, cursor)
		}
		all = append(all, page.Changes...)
		if !page.HasMore {
			return page.Cursor, all
		}
		after = page.Cursor
	}
}

// mixedWorld drives a deterministic sequence of random writes of every
// kind. users[0] is the observer: a member of convs[0] and convs[1]
// throughout, and never of convs[2].
type mixedWorld struct {
	t       *testing.T
	s       chat.Store
	ids     *IDs
	rng     *rand.Rand
	users   []chat.UserID
	convs   []chat.ConversationID
	msgs    map[chat.ConversationID][]chat.MessageID
	deleted map[chat.MessageID]bool
	left    map[memberKey]chat.Member // the observer's expected member_left records
	step    int
}

// testMixedSync makes 1,000 writes of every kind in three conversations
// while the observer syncs every 37 writes, 7 changes a page: the replica
// it builds must match the store, and so must one built by a sync from
// position 0, in which each thing appears once.
func testMixedSync(t *testing.T, s chat.Store, ids *IDs) {
	w := &mixedWorld{t: t, s: s, ids: ids, rng: rand.New(rand.NewPCG(1, 2)),
		msgs: map[chat.ConversationID][]chat.MessageID{}, deleted: map[chat.MessageID]bool{}, left: map[memberKey]chat.Member{}}
	for _, name := range []string{"alice", "bob", "carol", "dave", "erin"} {
		w.users = append(w.users, MustCreateUser(t, s, ids, name).ID)
	}
	alice, bob, carol, dave := w.users[0], w.users[1], w.users[2], w.users[3]
	w.convs = []chat.ConversationID{
		MustCreateGroup(t, s, ids, alice, bob, carol).ID,
		MustCreateGroup(t, s, ids, alice, dave).ID,
		MustCreateGroup(t, s, ids, bob, carol).ID,
	}
	seen, cursor := newReplica(), int64(0)
	for i := range 1000 {
		w.write()
		if i%37 == 0 {
			cursor, _ = syncChanges(t, s, alice, cursor, 7, seen)
		}
	}
	syncChanges(t, s, alice, cursor, 7, seen)
	want := currentState(t, s, alice, w.left)
	wantSameState(t, "replica synced along", want, seen)

	fresh := newReplica()
	_, all := syncChanges(t, s, alice, 0, 50, fresh)
	wantSameState(t, "replica synced from 0", want, fresh)
	if len(all) != len(want.changes()) {
		t.Errorf("a sync from 0 gave %d changes for %d things: some thing came twice", len(all), len(want.changes()))
	}
	if n, err := s.CountChanges(t.Context(), alice, 0, 1<<30); err != nil || n != len(all) {
		t.Errorf("CountChanges from 0 = %d, %v; want %d", n, err, len(all))
	}
}

// write makes one random write.
func (w *mixedWorld) write() {
	w.step++
	at := At(time.Duration(w.step) * time.Second)
	conv := w.convs[w.rng.IntN(len(w.convs))]
	switch n := w.rng.IntN(100); {
	case n < 35:
		w.send(conv)
	case n < 45:
		w.edit(conv, at)
	case n < 50:
		w.delete(conv, at)
	case n < 65:
		w.react(conv)
	case n < 80:
		w.receipt(conv, n < 75)
	case n < 88:
		w.add(conv, at)
	case n < 95:
		w.remove(conv)
	default:
		_, err := w.s.UpdateTitle(w.t.Context(), conv, fmt.Sprintf("title %d", w.step))
		mustNot(w.t, "UpdateTitle", err)
	}
}

// pick returns a random element of xs; xs must not be empty.
func pick[T any](rng *rand.Rand, xs []T) T { return xs[rng.IntN(len(xs))] }

func (w *mixedWorld) members(conv chat.ConversationID) []chat.Member {
	members, err := w.s.ListMembers(w.t.Context(), conv)
	mustNot(w.t, "ListMembers", err)
	return members
}

func (w *mixedWorld) send(conv chat.ConversationID) {
	members := w.members(conv)
	d := draft(w.ids, conv, pick(w.rng, members).User, fmt.Sprintf("k%d", w.step), fmt.Sprintf("message %d", w.step), time.Duration(w.step)*time.Second)
	if msgs := w.msgs[conv]; len(msgs) > 0 && w.rng.IntN(3) == 0 {
		d.ReplyTo = pick(w.rng, msgs)
	}
	if w.rng.IntN(3) == 0 {
		d.Mentions = []chat.UserID{pick(w.rng, members).User}
	}
	r := mustAppendBatch(w.t, w.s, d)[0]
	mustNot(w.t, "AppendMessages result", r.Err)
	w.msgs[conv] = append(w.msgs[conv], r.Message.ID)
}

// message returns a random message of conv, or false if it has none.
func (w *mixedWorld) message(conv chat.ConversationID) (chat.MessageID, bool) {
	if len(w.msgs[conv]) == 0 {
		return 0, false
	}
	return pick(w.rng, w.msgs[conv]), true
}

// wantOutcome fails t unless err fits whether the message is deleted.
func (w *mixedWorld) wantOutcome(what string, id chat.MessageID, err error) {
	w.t.Helper()
	if w.deleted[id] {
		wantCode(w.t, err, chat.CodeConflict)
	} else {
		mustNot(w.t, what, err)
	}
}

func (w *mixedWorld) edit(conv chat.ConversationID, at time.Time) {
	if id, ok := w.message(conv); ok {
		_, err := w.s.EditMessage(w.t.Context(), conv, id, fmt.Sprintf("edit %d", w.step), nil, at)
		w.wantOutcome("EditMessage", id, err)
	}
}

func (w *mixedWorld) delete(conv chat.ConversationID, at time.Time) {
	if id, ok := w.message(conv); ok {
		_, err := w.s.DeleteMessage(w.t.Context(), conv, id, at)
		mustNot(w.t, "DeleteMessage", err)
		w.deleted[id] = true
	}
}

func (w *mixedWorld) react(conv chat.ConversationID) {
	if id, ok := w.message(conv); ok {
		_, err := w.s.SetReaction(w.t.Context(), conv, id, pick(w.rng, w.users), pick(w.rng, []string{"👍", "❤️", "🎉"}), w.rng.IntN(3) > 0)
		w.wantOutcome("SetReaction", id, err)
	}
}

func (w *mixedWorld) receipt(conv chat.ConversationID, read bool) {
	user, seq := pick(w.rng, w.members(conv)).User, int64(w.rng.IntN(len(w.msgs[conv])+3))
	var err error
	if read {
		_, err = w.s.UpdateReadSeq(w.t.Context(), conv, user, seq)
	} else {
		_, err = w.s.UpdateDeliveredSeq(w.t.Context(), conv, user, seq)
	}
	mustNot(w.t, "receipt", err)
}

// add adds a random user other than the observer, who may be a member
// already or have left before.
func (w *mixedWorld) add(conv chat.ConversationID, at time.Time) {
	user := pick(w.rng, w.users[1:])
	added, err := w.s.AddMembers(w.t.Context(), conv, []chat.Member{{User: user, Role: chat.RoleMember, JoinedAt: at}})
	mustNot(w.t, "AddMembers", err)
	if len(added) > 0 {
		delete(w.left, memberKey{conv, user})
	}
}

// remove removes a random member that is neither the observer nor an
// owner, recording the member_left record the observer should see.
func (w *mixedWorld) remove(conv chat.ConversationID) {
	var candidates []chat.Member
	for _, m := range w.members(conv) {
		if m.User != w.users[0] && m.Role != chat.RoleOwner {
			candidates = append(candidates, m)
		}
	}
	if len(candidates) == 0 {
		return
	}
	m := pick(w.rng, candidates)
	_, err := w.s.RemoveMember(w.t.Context(), conv, m.User)
	mustNot(w.t, "RemoveMember", err)
	if conv != w.convs[2] {
		w.left[memberKey{conv, m.User}] = m
	}
}
