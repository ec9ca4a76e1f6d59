package chattest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/natter-chat/natter/internal/chat"
)

// draft returns a new draft with a fresh id, sent at At(offset).
func draft(ids *IDs, conv chat.ConversationID, sender chat.UserID, clientID, text string, offset time.Duration) chat.Draft {
	return chat.Draft{ID: chat.MessageID(ids.NextID()), Conv: conv, Sender: sender, ClientID: clientID, Text: text, SentAt: At(offset)}
}

// stored returns the message d becomes when stored with seq, without its
// change position: compare with ignorePos.
func stored(d chat.Draft, seq int64) chat.Message {
	return chat.Message{ID: d.ID, Conv: d.Conv, Seq: seq, Sender: d.Sender, ClientID: d.ClientID, Text: d.Text, SentAt: d.SentAt,
		ReplyTo: d.ReplyTo, Mentions: d.Mentions}
}

// mustAppendBatch appends drafts in one call and fails t on any error.
func mustAppendBatch(t testing.TB, s chat.Store, drafts ...chat.Draft) []chat.AppendResult {
	t.Helper()
	res, err := s.AppendMessages(t.Context(), drafts)
	mustNot(t, "AppendMessages", err)
	if len(res) != len(drafts) {
		t.Fatalf("AppendMessages returned %d results for %d drafts", len(res), len(drafts))
	}
	return res
}

// newMessages appends n messages from sender to conv in one batch and
// returns them in seq order.
func newMessages(t testing.TB, s chat.Store, ids *IDs, conv chat.ConversationID, sender chat.UserID, n int) []chat.Message {
	t.Helper()
	drafts := make([]chat.Draft, n)
	for i := range drafts {
		drafts[i] = draft(ids, conv, sender, fmt.Sprintf("c%d", i), fmt.Sprintf("message %d", i+1), time.Duration(i)*time.Millisecond)
	}
	var msgs []chat.Message
	for i, r := range mustAppendBatch(t, s, drafts...) {
		mustNot(t, "AppendMessages result", r.Err)
		msgs = append(msgs, r.Message)
		if r.Message.Seq != int64(i+1) {
			t.Fatalf("message %d got seq %d, want %d", i, r.Message.Seq, i+1)
		}
	}
	return msgs
}

// listAll returns every message of conv in ascending seq order, paging
// forwards from the start.
func listAll(t testing.TB, s chat.Store, conv chat.ConversationID) []chat.Message {
	t.Helper()
	var all []chat.Message
	for {
		after := int64(0)
		if len(all) > 0 {
			after = all[len(all)-1].Seq
		}
		page, err := s.ListMessages(t.Context(), chat.MessageQuery{Conv: conv, After: after, Forward: true, Limit: chat.MaxPageSize})
		mustNot(t, "ListMessages", err)
		if len(page) == 0 {
			return all
		}
		all = append(all, page...)
	}
}

func messageTests() []storeMethod {
	return []storeMethod{
		{"AppendMessages", append(appendTests(), replyAndMentionTests()...)},
		{"ListMessages", listMessagesTests()},
	}
}

func appendTests() []storeCase {
	return []storeCase{
		{"assigns seqs 1..N without gaps", testGapFreeSeqs},
		{"concurrent appends to one conversation get seqs 1..2000", testConcurrentAppends},
		{"retry in a later batch returns the original", func(t *testing.T, s chat.Store, ids *IDs) {
			alice := MustCreateUser(t, s, ids, "alice")
			c := MustCreateGroup(t, s, ids, alice.ID)
			original := mustAppendBatch(t, s, draft(ids, c.ID, alice.ID, "k1", "first try", 0))[0].Message
			retry := draft(ids, c.ID, alice.ID, "k1", "second try", time.Minute)
			next := draft(ids, c.ID, alice.ID, "k2", "next", time.Minute)
			res := mustAppendBatch(t, s, retry, next)
			wantEqual(t, "retry result", chat.AppendResult{Message: original, Duplicate: true}, res[0])
			wantEqual(t, "next result (the retry used no seq)", chat.AppendResult{Message: stored(next, 2)}, res[1], ignorePos())
			wantEqual(t, "stored messages", []chat.Message{original, res[1].Message}, listAll(t, s, c.ID))
		}},
		{"retry in the same batch returns the first", func(t *testing.T, s chat.Store, ids *IDs) {
			alice := MustCreateUser(t, s, ids, "alice")
			c := MustCreateGroup(t, s, ids, alice.ID)
			first := draft(ids, c.ID, alice.ID, "k1", "first try", 0)
			retry := draft(ids, c.ID, alice.ID, "k1", "second try", time.Second)
			other := draft(ids, c.ID, alice.ID, "k2", "other", time.Second)
			res := mustAppendBatch(t, s, first, retry, other)
			wantEqual(t, "results", []chat.AppendResult{
				{Message: stored(first, 1)},
				{Message: stored(first, 1), Duplicate: true},
				{Message: stored(other, 2)},
			}, res, ignorePos())
			wantEqual(t, "the retry's message", res[0].Message, res[1].Message)
		}},
		{"same client id from another sender is a new message", func(t *testing.T, s chat.Store, ids *IDs) {
			alice := MustCreateUser(t, s, ids, "alice")
			bob := MustCreateUser(t, s, ids, "bob")
			c := MustCreateGroup(t, s, ids, alice.ID, bob.ID)
			a := draft(ids, c.ID, alice.ID, "k1", "from alice", 0)
			b := draft(ids, c.ID, bob.ID, "k1", "from bob", 0)
			res := mustAppendBatch(t, s, a, b)
			wantEqual(t, "results", []chat.AppendResult{{Message: stored(a, 1)}, {Message: stored(b, 2)}}, res, ignorePos())
		}},
		{"drafts without a client id are never retries", func(t *testing.T, s chat.Store, ids *IDs) {
			alice := MustCreateUser(t, s, ids, "alice")
			c := MustCreateGroup(t, s, ids, alice.ID)
			a := draft(ids, c.ID, alice.ID, "", "one", 0)
			b := draft(ids, c.ID, alice.ID, "", "two", 0)
			res := mustAppendBatch(t, s, a, b)
			wantEqual(t, "results", []chat.AppendResult{{Message: stored(a, 1)}, {Message: stored(b, 2)}}, res, ignorePos())
		}},
		{"missing conversation fails only its draft", func(t *testing.T, s chat.Store, ids *IDs) {
			alice := MustCreateUser(t, s, ids, "alice")
			c := MustCreateGroup(t, s, ids, alice.ID)
			before := draft(ids, c.ID, alice.ID, "k1", "before", 0)
			lost := draft(ids, chat.ConversationID(ids.NextID()), alice.ID, "k2", "lost", 0)
			after := draft(ids, c.ID, alice.ID, "k3", "after", 0)
			res := mustAppendBatch(t, s, before, lost, after)
			wantCode(t, res[1].Err, chat.CodeNotFound)
			for _, i := range []int{0, 2} {
				mustNot(t, fmt.Sprintf("result %d", i), res[i].Err)
			}
			got := []chat.Message{res[0].Message, res[2].Message}
			wantEqual(t, "stored messages", []chat.Message{stored(before, 1), stored(after, 2)}, got, ignorePos())
			wantEqual(t, "listed messages", got, listAll(t, s, c.ID))
		}},
		{"empty batch stores nothing", func(t *testing.T, s chat.Store, ids *IDs) {
			res, err := s.AppendMessages(t.Context(), nil)
			mustNot(t, "AppendMessages", err)
			if len(res) != 0 {
				t.Fatalf("AppendMessages(nil) = %v, want no results", res)
			}
		}},
	}
}

// testGapFreeSeqs appends batches of 3, 1 and 4 messages: they must get
// seqs 1..8 in order, and the conversation's LastSeq must follow.
func testGapFreeSeqs(t *testing.T, s chat.Store, ids *IDs) {
	alice := MustCreateUser(t, s, ids, "alice")
	c := MustCreateGroup(t, s, ids, alice.ID)
	var want []chat.Message
	for batch, size := range []int{3, 1, 4} {
		var drafts []chat.Draft
		for i := range size {
			drafts = append(drafts, draft(ids, c.ID, alice.ID, fmt.Sprintf("b%d-%d", batch, i), "hello", time.Minute))
		}
		for i, r := range mustAppendBatch(t, s, drafts...) {
			wantEqual(t, "result", chat.AppendResult{Message: stored(drafts[i], int64(len(want)+1))}, r, ignorePos())
			want = append(want, r.Message)
		}
	}
	wantEqual(t, "stored messages", want, listAll(t, s, c.ID))
	conv, err := s.GetConversation(t.Context(), c.ID)
	mustNot(t, "GetConversation", err)
	wantEqual(t, "LastSeq", int64(len(want)), conv.LastSeq)
}

// testConcurrentAppends has 20 senders append 100 messages each to one
// conversation, in batches of 1 to 10, all at once: the store must number
// them 1..2000 with no gap and no duplicate, keep each one intact, and keep
// each sender's messages in the order it sent them.
func testConcurrentAppends(t *testing.T, s chat.Store, ids *IDs) {
	const senders, perSender = 20, 100
	users := make([]chat.UserID, senders)
	for i := range users {
		users[i] = MustCreateUser(t, s, ids, fmt.Sprintf("user%d", i)).ID
	}
	c := MustCreateGroup(t, s, ids, users[0], users[1:]...)

	sent := make([][]chat.Message, senders)
	errs := make([]error, senders)
	var wg sync.WaitGroup
	for w := range senders {
		wg.Go(func() { sent[w], errs[w] = sendAll(t.Context(), s, ids, c.ID, users[w], w, perSender) })
	}
	wg.Wait()
	for w, err := range errs {
		mustNot(t, fmt.Sprintf("sender %d", w), err)
	}

	all := listAll(t, s, c.ID)
	if len(all) != senders*perSender {
		t.Fatalf("stored %d messages, want %d", len(all), senders*perSender)
	}
	byID := make(map[chat.MessageID]chat.Message, len(all))
	for i, m := range all {
		if m.Seq != int64(i+1) {
			t.Fatalf("message %d of %d has seq %d, want %d", i, len(all), m.Seq, i+1)
		}
		byID[m.ID] = m
	}
	for w, msgs := range sent {
		for i, m := range msgs {
			wantEqual(t, fmt.Sprintf("sender %d message %d as stored", w, i), m, byID[m.ID])
			if i > 0 && m.Seq <= msgs[i-1].Seq {
				t.Errorf("sender %d: message %d has seq %d after seq %d", w, i, m.Seq, msgs[i-1].Seq)
			}
		}
	}
	conv, err := s.GetConversation(t.Context(), c.ID)
	mustNot(t, "GetConversation", err)
	wantEqual(t, "LastSeq", int64(senders*perSender), conv.LastSeq)
}

// sendAll appends n messages from sender w in batches of 1 to 10 and
// returns the stored messages in the order sent. It reports, rather than
// fails on, a problem: it runs on its own goroutine.
func sendAll(ctx context.Context, s chat.Store, ids *IDs, conv chat.ConversationID, sender chat.UserID, w, n int) ([]chat.Message, error) {
	var out []chat.Message
	for batch := 0; len(out) < n; batch++ {
		drafts := make([]chat.Draft, min(1+(w+batch)%10, n-len(out)))
		for i := range drafts {
			k := len(out) + i
			drafts[i] = draft(ids, conv, sender, fmt.Sprintf("w%d-%d", w, k), fmt.Sprintf("sender %d says %d", w, k), time.Duration(k)*time.Millisecond)
		}
		res, err := s.AppendMessages(ctx, drafts)
		if err != nil {
			return nil, fmt.Errorf("batch %d: %w", batch, err)
		}
		if len(res) != len(drafts) {
			return nil, fmt.Errorf("batch %d: %d results for %d drafts", batch, len(res), len(drafts))
		}
		for i, r := range res {
			if r.Err != nil || r.Duplicate || !cmp.Equal(r.Message, stored(drafts[i], r.Message.Seq), ignorePos()) {
				return nil, fmt.Errorf("batch %d: draft %+v gave result %+v", batch, drafts[i], r)
			}
			out = append(out, r.Message)
		}
	}
	return out, nil
}

func listMessagesTests() []storeCase {
	return []storeCase{
		{"pages backwards from the newest", func(t *testing.T, s chat.Store, ids *IDs) {
			alice := MustCreateUser(t, s, ids, "alice")
			c := MustCreateGroup(t, s, ids, alice.ID)
			msgs := newMessages(t, s, ids, c.ID, alice.ID, 10)
			seq := func(n int64) chat.Message { return msgs[n-1] }
			for _, step := range []struct {
				before int64
				want   []chat.Message
			}{
				{0, []chat.Message{seq(10), seq(9), seq(8)}},
				{8, []chat.Message{seq(7), seq(6), seq(5)}},
				{3, []chat.Message{seq(2), seq(1)}},
				{1, nil},
			} {
				got, err := s.ListMessages(t.Context(), chat.MessageQuery{Conv: c.ID, Before: step.before, Limit: 3})
				mustNot(t, "ListMessages", err)
				wantEqual(t, fmt.Sprintf("page before %d", step.before), step.want, got)
			}
		}},
		{"pages forwards after a seq", func(t *testing.T, s chat.Store, ids *IDs) {
			alice := MustCreateUser(t, s, ids, "alice")
			c := MustCreateGroup(t, s, ids, alice.ID)
			msgs := newMessages(t, s, ids, c.ID, alice.ID, 10)
			seq := func(n int64) chat.Message { return msgs[n-1] }
			for _, step := range []struct {
				after   int64
				forward bool
				want    []chat.Message
			}{
				{0, true, []chat.Message{seq(1), seq(2), seq(3)}},
				{1, false, []chat.Message{seq(2), seq(3), seq(4)}},
				{7, true, []chat.Message{seq(8), seq(9), seq(10)}},
				{9, false, []chat.Message{seq(10)}},
				{10, true, nil},
			} {
				got, err := s.ListMessages(t.Context(), chat.MessageQuery{Conv: c.ID, After: step.after, Forward: step.forward, Limit: 3})
				mustNot(t, "ListMessages", err)
				wantEqual(t, fmt.Sprintf("page after %d (Forward %v)", step.after, step.forward), step.want, got)
			}
		}},
		{"limit is clamped to 1..MaxPageSize", func(t *testing.T, s chat.Store, ids *IDs) {
			alice := MustCreateUser(t, s, ids, "alice")
			c := MustCreateGroup(t, s, ids, alice.ID)
			n := chat.MaxPageSize + 2
			msgs := newMessages(t, s, ids, c.ID, alice.ID, n)
			for _, step := range []struct {
				q         chat.MessageQuery
				len       int
				firstSeq  int64
				direction string
			}{
				{chat.MessageQuery{Limit: 0}, 1, int64(n), "newest"},
				{chat.MessageQuery{Limit: -3}, 1, int64(n), "newest"},
				{chat.MessageQuery{Limit: chat.MaxPageSize + 1}, chat.MaxPageSize, int64(n), "newest"},
				{chat.MessageQuery{After: 1, Limit: 1 << 30}, chat.MaxPageSize, 2, "after 1"},
				{chat.MessageQuery{Forward: true, Limit: 0}, 1, 1, "forward from the start"},
			} {
				step.q.Conv = c.ID
				got, err := s.ListMessages(t.Context(), step.q)
				mustNot(t, "ListMessages", err)
				if len(got) != step.len || !cmp.Equal(got[0], msgs[step.firstSeq-1]) {
					t.Errorf("%s with Limit %d: got %d messages starting at seq %d, want %d starting at %d",
						step.direction, step.q.Limit, len(got), firstSeq(got), step.len, step.firstSeq)
				}
			}
		}},
		{"unknown conversation has no messages", func(t *testing.T, s chat.Store, ids *IDs) {
			got, err := s.ListMessages(t.Context(), chat.MessageQuery{Conv: chat.ConversationID(ids.NextID()), Limit: 10})
			mustNot(t, "ListMessages", err)
			if len(got) != 0 {
				t.Fatalf("ListMessages = %v, want none", got)
			}
		}},
	}
}

func firstSeq(msgs []chat.Message) int64 {
	if len(msgs) == 0 {
		return 0
	}
	return msgs[0].Seq
}
