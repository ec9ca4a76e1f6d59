package sequencer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/natter-chat/natter/internal/chat"
)

const testHold = 100 * time.Millisecond

// clock is a step clock: it moves only when a test advances it.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// recorder is the handler under test: it keeps what it is given and fails
// the test if it is ever called concurrently.
type recorder struct {
	t      testing.TB
	busy   atomic.Bool
	mu     sync.Mutex
	events []chat.Event
}

func (r *recorder) handle(e chat.Event) {
	if !r.busy.CompareAndSwap(false, true) {
		r.t.Error("handle called concurrently")
		return
	}
	defer r.busy.Store(false)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) all() []chat.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// labels returns what conv received: message seqs as numbers, other events
// as their kind.
func (r *recorder) labels(conv chat.ConversationID) []string {
	var out []string
	for _, e := range r.all() {
		if e.Conv != conv {
			continue
		}
		if e.Kind == chat.EventMessage && e.Message != nil {
			out = append(out, strconv.FormatInt(e.Message.Seq, 10))
		} else {
			out = append(out, string(e.Kind))
		}
	}
	return out
}

// store backs Options.Fetch with conversations 1..convs of messages
// 1..perConv (as msg makes them) and records the calls; fail, if set,
// decides the outcome of call n (from 1).
type store struct {
	convs, perConv int64
	mu             sync.Mutex
	calls          []string
	fail           func(n int) (msgs []chat.Message, err error, failed bool)
}

func newStore(convs, perConv int) *store {
	return &store{convs: int64(convs), perConv: int64(perConv)}
}

func (st *store) Fetch(ctx context.Context, conv chat.ConversationID, after int64, limit int) ([]chat.Message, error) {
	st.mu.Lock()
	st.calls = append(st.calls, fmt.Sprintf("conv %d after %d limit %d", conv, after, limit))
	n, fail := len(st.calls), st.fail
	st.mu.Unlock()
	if fail != nil {
		if msgs, err, failed := fail(n); failed {
			return msgs, err
		}
	}
	var out []chat.Message
	for seq := after + 1; seq <= min(after+int64(limit), st.perConv) && conv >= 1 && int64(conv) <= st.convs; seq++ {
		out = append(out, *msg(conv, seq).Message)
	}
	return out, nil
}

func (st *store) Calls() []string {
	st.mu.Lock()
	defer st.mu.Unlock()
	return slices.Clone(st.calls)
}

func msg(conv chat.ConversationID, seq int64) chat.Event {
	m := &chat.Message{ID: chat.MessageID(int64(conv)*1_000_000 + seq), Conv: conv, Seq: seq, Sender: 11, Text: "m" + strconv.FormatInt(seq, 10), Pos: seq * 10}
	return chat.Event{Kind: chat.EventMessage, Conv: conv, Message: m, Pos: m.Pos, Origin: 7}
}

func other(conv chat.ConversationID, kind chat.EventKind) chat.Event {
	return chat.Event{Kind: kind, Conv: conv, Users: []chat.UserID{11}, Typing: true}
}

type harness struct {
	s   *Sequencer
	rec *recorder
	clk *clock
	st  *store
}

// start returns a running Sequencer with a step clock and Hold testHold,
// fetching from a store of 3 conversations of 10,000 messages unless opts
// says otherwise. Run stops at cleanup.
func start(t testing.TB, opts Options) *harness {
	t.Helper()
	return startWith(t, newStore(3, 10_000), opts)
}

// startWith is start with the given store.
func startWith(t testing.TB, st *store, opts Options) *harness {
	t.Helper()
	h := &harness{rec: &recorder{t: t}, clk: &clock{t: time.Unix(1_700_000_000, 0)}, st: st}
	if opts.Hold == 0 {
		opts.Hold = testHold
	}
	if opts.Now == nil {
		opts.Now = h.clk.Now
	}
	if opts.Fetch == nil {
		opts.Fetch = h.st.Fetch
	}
	h.s = New(h.rec.handle, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.s.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return h
}

func (h *harness) handle(events ...chat.Event) {
	for _, e := range events {
		h.s.Handle(e)
	}
}

// waitFor polls cond until it holds, failing the test after 20 seconds.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// advanceUntil moves the clock by step and polls, until cond holds.
func (h *harness) advanceUntil(t testing.TB, step time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		h.clk.Advance(step)
		time.Sleep(2 * time.Millisecond)
	}
}

func (h *harness) want(t testing.TB, conv chat.ConversationID, want ...string) {
	t.Helper()
	if diff := cmp.Diff(want, h.rec.labels(conv)); diff != "" {
		t.Errorf("conv %d received (-want +got):\n%s", conv, diff)
	}
}

func (h *harness) waitWant(t testing.TB, conv chat.ConversationID, want ...string) {
	t.Helper()
	waitFor(t, fmt.Sprintf("conv %d to receive %v", conv, want), func() bool { return slices.Equal(h.rec.labels(conv), want) })
}

func TestSequencer_Handle(t *testing.T) {
	t.Run("in-order stream and other kinds pass through unchanged", func(t *testing.T) {
		h := start(t, Options{})
		in := []chat.Event{
			msg(1, 1), msg(2, 1), other(1, chat.EventTyping), msg(1, 2), msg(2, 2),
			other(1, chat.EventReceipt), {Kind: chat.EventSessionRevoked, Users: []chat.UserID{12}, Session: 21},
			msg(1, 3), other(2, chat.EventMembersAdded), msg(2, 3),
		}
		h.handle(in...)
		if diff := cmp.Diff(in, h.rec.all()); diff != "" {
			t.Errorf("delivered (-want +got):\n%s", diff)
		}
		if got := h.s.Stats(); got != (Stats{}) {
			t.Errorf("Stats = %+v, want zero", got)
		}
	})

	t.Run("swapped pair is delivered in order without a fetch", func(t *testing.T) {
		h := start(t, Options{})
		three := msg(1, 3)
		h.handle(msg(1, 1), three, msg(1, 2))
		h.want(t, 1, "1", "2", "3")
		if got := h.rec.all()[2]; got.Message != three.Message || got.Origin != three.Origin {
			t.Errorf("held event delivered as %+v, want the original %+v", got, three)
		}
		if got := h.s.Stats(); got.Reordered != 1 || got.Fetched != 0 {
			t.Errorf("Stats = %+v, want Reordered 1, Fetched 0", got)
		}
		if calls := h.st.Calls(); len(calls) != 0 {
			t.Errorf("Fetch called: %v", calls)
		}
	})

	t.Run("duplicates are dropped", func(t *testing.T) {
		h := start(t, Options{})
		h.handle(msg(1, 1), msg(1, 2), msg(1, 2), msg(1, 1), msg(1, 4), msg(1, 4), msg(1, 3), msg(1, 3))
		h.want(t, 1, "1", "2", "3", "4")
		if got := h.s.Stats().Duplicates; got != 4 {
			t.Errorf("Duplicates = %d, want 4", got)
		}
	})

	t.Run("seq 1 is delivered at once", func(t *testing.T) {
		h := start(t, Options{})
		h.handle(msg(1, 1), msg(1, 2))
		h.want(t, 1, "1", "2")
	})

	t.Run("events behind held messages wait for them", func(t *testing.T) {
		h := start(t, Options{})
		h.handle(msg(1, 1), msg(1, 3))
		edit := msg(1, 3)
		edit.Kind = chat.EventMessageUpdated
		h.handle(edit, other(1, chat.EventTyping), msg(1, 5), other(1, chat.EventReceipt), other(2, chat.EventTyping))
		h.want(t, 1, "1")
		h.want(t, 2, "typing") // another conversation is not held up
		h.handle(msg(1, 2))
		h.want(t, 1, "1", "2", "3", "message_updated", "typing")
		h.handle(msg(1, 4))
		h.want(t, 1, "1", "2", "3", "message_updated", "typing", "4", "5", "receipt")
		h.handle(other(1, chat.EventTyping))
		h.want(t, 1, "1", "2", "3", "message_updated", "typing", "4", "5", "receipt", "typing")
	})
}

func TestSequencer_Run(t *testing.T) {
	t.Run("first message of a conversation waits Hold for one overtaken on the way", func(t *testing.T) {
		h := start(t, Options{})
		h.handle(msg(1, 17), msg(1, 18), msg(1, 16), other(1, chat.EventTyping))
		h.want(t, 1)
		h.clk.Advance(testHold)
		h.waitWant(t, 1, "16", "17", "18", "typing")
		h.handle(msg(1, 19), msg(1, 15))
		h.want(t, 1, "16", "17", "18", "typing", "19")
		if calls := h.st.Calls(); len(calls) != 0 {
			t.Errorf("a fresh conversation fetched %v; what came before its first message is unknown", calls)
		}
		if st := h.s.Stats(); st.Skipped != 0 || st.Duplicates != 0 || st.Late != 1 {
			t.Errorf("stats %+v, want nothing skipped and one late message (15, which came after delivery had started at 16)", st)
		}
	})

	t.Run("a fresh conversation with a gap among its first messages fetches it", func(t *testing.T) {
		h := start(t, Options{})
		h.handle(msg(1, 5), msg(1, 7))
		h.clk.Advance(testHold)
		h.waitWant(t, 1, "5")
		h.clk.Advance(testHold)
		h.waitWant(t, 1, "5", "6", "7")
	})

	t.Run("missing message is fetched after Hold and delivered first", func(t *testing.T) {
		h := start(t, Options{})
		h.handle(msg(1, 1), msg(1, 3), other(1, chat.EventTyping), msg(1, 4))
		h.want(t, 1, "1")
		h.clk.Advance(testHold)
		h.waitWant(t, 1, "1", "2", "3", "typing", "4")
		if diff := cmp.Diff([]string{"conv 1 after 1 limit 1"}, h.st.Calls()); diff != "" {
			t.Errorf("Fetch calls (-want +got):\n%s", diff)
		}
		fetched := h.rec.all()[1]
		want := chat.Event{Kind: chat.EventMessage, Conv: 1, Message: msg(1, 2).Message, Pos: 20}
		if diff := cmp.Diff(want, fetched); diff != "" {
			t.Errorf("fetched event (-want +got):\n%s", diff)
		}
		if got := h.s.Stats(); got.Fetched != 1 || got.Reordered != 2 || got.FetchErrors != 0 || got.Skipped != 0 {
			t.Errorf("Stats = %+v, want Fetched 1, Reordered 2", got)
		}
	})

	t.Run("several gaps are fetched one after the other", func(t *testing.T) {
		h := start(t, Options{})
		h.handle(msg(2, 1), msg(2, 3), msg(2, 6))
		h.clk.Advance(testHold)
		h.waitWant(t, 2, "1", "2", "3", "4", "5", "6")
		if diff := cmp.Diff([]string{"conv 2 after 1 limit 1", "conv 2 after 3 limit 2"}, h.st.Calls()); diff != "" {
			t.Errorf("Fetch calls (-want +got):\n%s", diff)
		}
		if got := h.s.Stats().Fetched; got != 3 {
			t.Errorf("Fetched = %d, want 3", got)
		}
	})

	t.Run("a message arriving late after a fetch is a duplicate", func(t *testing.T) {
		h := start(t, Options{})
		h.handle(msg(1, 1), msg(1, 3))
		h.clk.Advance(testHold)
		h.waitWant(t, 1, "1", "2", "3")
		h.handle(msg(1, 2), msg(1, 4))
		h.want(t, 1, "1", "2", "3", "4")
		if got := h.s.Stats().Duplicates; got != 1 {
			t.Errorf("Duplicates = %d, want 1", got)
		}
	})

	t.Run("failed fetches are retried with backoff", func(t *testing.T) {
		h := start(t, Options{})
		h.st.fail = func(n int) ([]chat.Message, error, bool) {
			switch n {
			case 1:
				return nil, errors.New("connection refused"), true
			case 2:
				return nil, nil, true // a replica that lags: none of the missing messages
			}
			return nil, nil, false
		}
		h.handle(msg(1, 1), msg(1, 3))
		h.clk.Advance(testHold)
		waitFor(t, "first fetch to fail", func() bool { return h.s.Stats().FetchErrors == 1 })
		h.clk.Advance(testHold)
		waitFor(t, "second fetch to fail", func() bool { return h.s.Stats().FetchErrors == 2 })
		h.want(t, 1, "1")
		h.clk.Advance(2 * testHold)
		h.waitWant(t, 1, "1", "2", "3")
		if got := h.s.Stats(); got.FetchErrors != 2 || got.Fetched != 1 || got.Skipped != 0 {
			t.Errorf("Stats = %+v, want FetchErrors 2, Fetched 1", got)
		}
	})

	t.Run("a fetch that keeps failing releases what is held", func(t *testing.T) {
		h := start(t, Options{})
		h.st.fail = func(int) ([]chat.Message, error, bool) { return nil, errors.New("down"), true }
		h.handle(msg(1, 1), msg(1, 3), other(1, chat.EventTyping), msg(1, 4))
		h.advanceUntil(t, testHold, "held events to be released", func() bool { return len(h.rec.labels(1)) == 4 })
		h.want(t, 1, "1", "3", "typing", "4")
		if got := h.s.Stats(); got.FetchErrors != maxFetchAttempts || got.Skipped != 1 || got.Fetched != 0 {
			t.Errorf("Stats = %+v, want FetchErrors %d, Skipped 1", got, maxFetchAttempts)
		}
		h.handle(msg(1, 2), msg(1, 5))
		h.want(t, 1, "1", "3", "typing", "4", "5")
	})

	t.Run("without Fetch a gap is skipped after Hold", func(t *testing.T) {
		rec := &recorder{t: t}
		clk := &clock{}
		s := New(rec.handle, Options{Hold: testHold, Now: clk.Now})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); s.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		s.Handle(msg(1, 1))
		s.Handle(msg(1, 3))
		clk.Advance(testHold)
		waitFor(t, "the gap to be skipped", func() bool { return len(rec.labels(1)) == 2 })
		if got := s.Stats().Skipped; got != 1 {
			t.Errorf("Skipped = %d, want 1", got)
		}
	})

	t.Run("a gap wider than a page is skipped, not fetched", func(t *testing.T) {
		h := start(t, Options{})
		h.handle(msg(1, 1), msg(1, 5000))
		h.clk.Advance(testHold)
		h.waitWant(t, 1, "1", "5000")
		if calls := h.st.Calls(); len(calls) != 0 {
			t.Errorf("Fetch called: %v", calls)
		}
	})

	t.Run("reaching MaxHeld fetches at once", func(t *testing.T) {
		h := start(t, Options{MaxHeld: 4})
		h.handle(msg(1, 1), msg(1, 3), msg(1, 4), msg(1, 5), msg(1, 6)) // the clock does not move
		h.waitWant(t, 1, "1", "2", "3", "4", "5", "6")
	})

	t.Run("exceeding MaxHeld while a fetch hangs skips the gap", func(t *testing.T) {
		h := start(t, Options{MaxHeld: 4})
		release := make(chan struct{})
		called := make(chan struct{}, 1)
		h.st.fail = func(int) ([]chat.Message, error, bool) {
			called <- struct{}{}
			<-release
			return nil, nil, false
		}
		h.handle(msg(1, 1), msg(1, 3), msg(1, 4), msg(1, 5), msg(1, 6))
		<-called
		h.handle(msg(1, 7))
		h.want(t, 1, "1", "3", "4", "5", "6", "7")
		close(release)
		waitFor(t, "the fetch to finish", func() bool {
			h.s.mu.Lock()
			defer h.s.mu.Unlock()
			return h.s.inflight == 0
		})
		h.handle(msg(1, 8))
		h.want(t, 1, "1", "3", "4", "5", "6", "7", "8") // 2, fetched late, is not delivered
		if got := h.s.Stats(); got.Skipped != 1 || got.Fetched != 0 {
			t.Errorf("Stats = %+v, want Skipped 1, Fetched 0", got)
		}
	})
}

func TestSequencer_Reset(t *testing.T) {
	t.Run("forgets state", func(t *testing.T) {
		h := start(t, Options{})
		h.handle(msg(1, 1), msg(1, 2))
		h.s.Reset()
		h.handle(msg(1, 1), msg(1, 9))
		h.want(t, 1, "1", "2", "1")
		h.clk.Advance(testHold)
		waitFor(t, "the gap after reset to be fetched", func() bool { return len(h.rec.labels(1)) == 11 })
	})

	t.Run("delivers what was held", func(t *testing.T) {
		h := start(t, Options{})
		h.handle(msg(1, 1), msg(1, 3), other(1, chat.EventTyping))
		h.s.Reset()
		h.want(t, 1, "1", "3", "typing")
		h.handle(msg(1, 2), msg(1, 3))
		h.want(t, 1, "1", "3", "typing") // a fresh start waits Hold
		h.clk.Advance(testHold)
		h.waitWant(t, 1, "1", "3", "typing", "2", "3")
	})

	t.Run("ignores fetches started before it", func(t *testing.T) {
		h := start(t, Options{})
		release := make(chan struct{})
		called := make(chan struct{}, 1)
		h.st.fail = func(int) ([]chat.Message, error, bool) {
			called <- struct{}{}
			<-release
			return nil, nil, false
		}
		h.handle(msg(1, 1), msg(1, 3))
		h.clk.Advance(testHold)
		<-called
		h.s.Reset()
		h.handle(msg(1, 1), msg(1, 3))
		close(release)
		waitFor(t, "the fetch to finish", func() bool {
			h.s.mu.Lock()
			defer h.s.mu.Unlock()
			return h.s.inflight == 0
		})
		h.want(t, 1, "1", "3", "1")
	})
}

func TestSequencer_MaxConvs(t *testing.T) {
	t.Run("least recently used conversation is forgotten", func(t *testing.T) {
		h := start(t, Options{MaxConvs: 2})
		h.handle(msg(1, 1), msg(2, 1), msg(1, 2), msg(3, 1)) // 2 is the least recently used
		if got := h.s.Stats().Evicted; got != 1 {
			t.Errorf("Evicted = %d, want 1", got)
		}
		h.handle(msg(1, 2), msg(2, 1))
		h.want(t, 1, "1", "2") // state kept: a duplicate
		h.want(t, 2, "1", "1") // state forgotten: delivered as is
		h.want(t, 3, "1")
	})

	t.Run("an evicted conversation delivers what it held", func(t *testing.T) {
		h := start(t, Options{MaxConvs: 2})
		h.handle(msg(1, 1), msg(1, 3), msg(2, 1), msg(3, 1))
		h.want(t, 1, "1", "3")
		if got := h.s.Stats(); got.Skipped != 1 || got.Evicted != 1 {
			t.Errorf("Stats = %+v, want Skipped 1, Evicted 1", got)
		}
	})
}

// TestSequencer_Randomized feeds 50 conversations of 200 messages each,
// locally shuffled, with about 2% lost, and some typing events, while the
// clock moves; every conversation must receive exactly 1..200 in order,
// and every typing event after the messages that arrived before it.
// Seq 1 arrives first (the first message sets the state) and seq 200 is
// never lost (a lost last message is noticed only when a later one comes).
func TestSequencer_Randomized(t *testing.T) {
	const convs, perConv, window = 50, 200, 6
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed>>1))

	h := startWith(t, newStore(convs, perConv), Options{})

	streams := make([][]chat.Event, convs)
	for c := range convs {
		conv := chat.ConversationID(c + 1)
		type keyed struct {
			key float64
			seq int64
		}
		var ks []keyed
		for seq := int64(2); seq <= perConv; seq++ {
			if seq != perConv && rng.Float64() < 0.02 {
				continue
			}
			ks = append(ks, keyed{float64(seq) + rng.Float64()*window, seq})
		}
		sort.Slice(ks, func(i, j int) bool { return ks[i].key < ks[j].key })
		streams[c] = append(streams[c], msg(conv, 1))
		maxSeq := int64(1)
		for _, k := range ks {
			streams[c] = append(streams[c], msg(conv, k.seq))
			maxSeq = max(maxSeq, k.seq)
			if rng.Float64() < 0.05 {
				ev := other(conv, chat.EventTyping)
				ev.Pos = maxSeq // the seq it must follow
				streams[c] = append(streams[c], ev)
			}
		}
	}

	fed := 0
	for {
		var open []int
		for c := range streams {
			if len(streams[c]) > 0 {
				open = append(open, c)
			}
		}
		if len(open) == 0 {
			break
		}
		c := open[rng.IntN(len(open))]
		h.s.Handle(streams[c][0])
		streams[c] = streams[c][1:]
		if fed++; fed%50 == 0 {
			h.clk.Advance(testHold / 3)
		}
	}

	complete := func() bool {
		counts := make(map[chat.ConversationID]int)
		for _, e := range h.rec.all() {
			if e.Kind == chat.EventMessage {
				counts[e.Conv]++
			}
		}
		for c := range convs {
			if counts[chat.ConversationID(c+1)] < perConv {
				return false
			}
		}
		return true
	}
	h.advanceUntil(t, testHold/3, "every conversation to be complete", complete)

	for c := range convs {
		conv := chat.ConversationID(c + 1)
		var seqs []int64
		for _, e := range h.rec.all() {
			if e.Conv != conv {
				continue
			}
			if e.Kind == chat.EventMessage {
				seqs = append(seqs, e.Message.Seq)
			} else if int64(len(seqs)) < e.Pos {
				t.Errorf("conv %d: typing event that followed seq %d delivered after seq %d", conv, e.Pos, len(seqs))
			}
		}
		want := make([]int64, perConv)
		for i := range want {
			want[i] = int64(i + 1)
		}
		if diff := cmp.Diff(want, seqs); diff != "" {
			t.Errorf("conv %d seqs (-want +got):\n%s", conv, diff)
		}
	}
	st := h.s.Stats()
	t.Logf("stats %+v, fetches %d", st, len(h.st.Calls()))
	if st.Skipped != 0 || st.FetchErrors != 0 || st.Fetched == 0 || st.Reordered == 0 {
		t.Errorf("Stats = %+v, want fetches and reorders, no skip or error", st)
	}
}

func BenchmarkInOrder(b *testing.B) {
	s := New(func(chat.Event) {}, Options{})
	e := msg(1, 0)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		e.Message.Seq = int64(i + 1)
		s.Handle(e)
	}
}

func BenchmarkInOrderManyConvs(b *testing.B) {
	const convs = 10_000
	s := New(func(chat.Event) {}, Options{})
	events := make([]chat.Event, convs)
	for c := range events {
		events[c] = msg(chat.ConversationID(c+1), 0)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		e := events[i%convs]
		e.Message.Seq = int64(i/convs + 1)
		s.Handle(e)
	}
}

// Messages not handed on in order are reported, so the node can tell its
// clients to catch up: a skipped gap, and a message that arrives after a
// fresh conversation started above it.
func TestSequencer_OnMissed(t *testing.T) {
	var mu sync.Mutex
	var missed []chat.ConversationID
	onMissed := func(c chat.ConversationID) { mu.Lock(); missed = append(missed, c); mu.Unlock() }
	got := func() []chat.ConversationID { mu.Lock(); defer mu.Unlock(); return slices.Clone(missed) }

	h := start(t, Options{OnMissed: onMissed})
	h.handle(msg(1, 16))
	h.clk.Advance(testHold)
	h.waitWant(t, 1, "16")
	h.handle(msg(1, 15)) // late: delivery started at 16
	if diff := cmp.Diff([]chat.ConversationID{1}, got()); diff != "" {
		t.Errorf("missed (-want +got):\n%s", diff)
	}

	// A fresh conversation whose held events overflow is no longer fresh:
	// its next gap is fetched, not silently passed.
	h2 := start(t, Options{MaxHeld: 2, OnMissed: onMissed})
	h2.handle(msg(2, 10), msg(2, 11), msg(2, 12))
	h2.waitWant(t, 2, "10", "11", "12")
	h2.handle(msg(2, 14))
	h2.clk.Advance(testHold)
	h2.waitWant(t, 2, "10", "11", "12", "13", "14")
	if st := h2.s.Stats(); st.Fetched != 1 {
		t.Errorf("stats %+v, want message 13 fetched", st)
	}
	if diff := cmp.Diff([]chat.ConversationID{1, 2}, got()); diff != "" {
		t.Errorf("missed (-want +got):\n%s (the overflow skip of conversation 2's fresh start counts once)", diff)
	}
}

// While a conversation waits for a missing message, Floor holds the cursor
// the node had when the wait began; it lifts once nothing waits.
func TestSequencer_Floor(t *testing.T) {
	var cursor atomic.Int64
	cursor.Store(50)
	h := start(t, Options{Cursor: cursor.Load})
	if f := h.s.Floor(); f != math.MaxInt64 {
		t.Fatalf("Floor with nothing held = %d", f)
	}
	h.handle(msg(1, 1), msg(1, 3))
	cursor.Store(90)
	if f := h.s.Floor(); f != 50 {
		t.Fatalf("Floor while waiting = %d, want the cursor when the wait began (50)", f)
	}
	h.handle(msg(1, 2))
	if f := h.s.Floor(); f != math.MaxInt64 {
		t.Fatalf("Floor after the gap filled = %d, want none", f)
	}
}
