package sequencer

import (
	"cmp"
	"context"
	"io"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/natter-chat/natter/internal/chat"
)

const (
	defaultHold     = 300 * time.Millisecond
	defaultMaxConvs = 100_000
	defaultMaxHeld  = 1024
	// maxFetchAttempts is how many fetches of one gap fail before the gap
	// is skipped.
	maxFetchAttempts = 4
	// maxConcurrentFetches bounds the fetches Run has in flight.
	maxConcurrentFetches = 4
	// fetchTimeout bounds one call of Options.Fetch.
	fetchTimeout = 10 * time.Second
	// keptCapacity is the largest per-conversation buffer kept for reuse
	// once it is empty; larger ones are released.
	keptCapacity = 16
)

// Options configures a Sequencer. The zero value is usable (it never
// fetches: gaps are skipped after Hold).
type Options struct {
	// Hold is how long a message that arrived ahead of a missing one waits
	// for it before the missing ones are fetched; zero means 300ms.
	Hold time.Duration
	// MaxConvs is how many conversations have state; beyond it the least
	// recently used one is forgotten. Zero means 100,000.
	MaxConvs int
	// MaxHeld is how many events one conversation may hold while it waits
	// for a missing message; zero means 1024.
	MaxHeld int
	// Fetch returns the messages of conv with seq > afterSeq in ascending
	// seq order, at most limit (<= chat.MaxPageSize) of them. It is called
	// from Run's goroutines, never from Handle. Nil means gaps are skipped
	// instead of filled.
	Fetch func(ctx context.Context, conv chat.ConversationID, afterSeq int64, limit int) ([]chat.Message, error)
	// Logger receives a warning for every failed fetch and skipped gap;
	// nil means discard.
	Logger *slog.Logger
	// Now is the clock that times holds and retries; nil means time.Now.
	Now func() time.Time
	// OnMissed, if set, is called when messages of conv were not handed
	// on in order: a gap was skipped, or a message arrived after delivery
	// had moved past its seq (a conversation started fresh above it). The
	// node's clients may have missed them and should catch up from their
	// cursors. It is called with the Sequencer's lock held: it must not
	// block or call back into the Sequencer.
	OnMissed func(conv chat.ConversationID)
	// Cursor, if set, gives the node's sync cursor; the Sequencer notes
	// it when a conversation starts waiting for a missing message, and
	// Floor returns the lowest such note while any conversation waits.
	Cursor func() int64
}

// Stats counts what a Sequencer did since New.
type Stats struct {
	Reordered  int64 // message events held, then delivered in seq order
	Fetched    int64 // fetched messages delivered to fill gaps
	Duplicates int64 // message events dropped: their seq was already delivered or held
	// FetchErrors counts fetches that failed or returned none of the
	// missing messages.
	FetchErrors int64
	Skipped     int64 // gaps skipped: held events delivered past missing messages
	Evicted     int64 // conversations forgotten to stay within MaxConvs
	Late        int64 // messages dropped because delivery had started above them (fresh conversations)
}

// Sequencer orders a node's incoming message events per conversation (see
// the package doc). Create it with New; it is safe for concurrent use.
type Sequencer struct {
	handle   func(chat.Event)
	hold     time.Duration
	maxConvs int
	maxHeld  int
	fetch    func(context.Context, chat.ConversationID, int64, int) ([]chat.Message, error)
	log      *slog.Logger
	onMissed func(chat.ConversationID)
	cursorFn func() int64
	floor    atomic.Int64 // see Floor
	now      func() time.Time
	tick     time.Duration
	wake     chan struct{} // Run looks for due gaps when it receives

	// mu guards everything below and is held while handle runs, which is
	// what keeps deliveries in order and never concurrent.
	mu       sync.Mutex
	convs    map[chat.ConversationID]*conv
	lru      conv                          // sentinel: lru.next is the most recently used, lru.prev the least
	waiting  map[chat.ConversationID]*conv // conversations holding events
	epoch    uint64                        // incremented by Reset, so that fetches started before it are ignored
	inflight int                           // fetches running

	reordered, fetched, duplicates, fetchErrors, skipped, evicted, late atomic.Int64
}

// conv is the state of one conversation.
type conv struct {
	id   chat.ConversationID
	last int64 // seq of the last delivered message
	// held are message events with seq > last+1, in ascending seq order,
	// without duplicates.
	held []chat.Event
	// queued are other events that arrived while messages were held, in
	// arrival order; their barriers never decrease and each is the seq of
	// a held message, so queued is empty whenever held is.
	queued []queuedEvent
	// deadline is, while events are held, when the first gap is due for a
	// fetch (or to be skipped).
	deadline time.Time
	attempts int  // failed fetches of the current gap
	fetching bool // a fetch for this conversation is running
	// fresh: nothing delivered yet, and which seqs before the first held
	// one this node's clients already have is unknown (the node just
	// started, reset or forgot the conversation). Its first gap is never
	// fetched: once Hold has passed, delivery starts at the first held.
	fresh bool
	// start is the seq a fresh conversation started delivering at: a
	// lower seq that arrives later was never handed on.
	start int64
	// floor is the node's cursor when the conversation started waiting.
	floor int64

	prev, next *conv // LRU list
}

// queuedEvent is an event to deliver once the message with seq barrier has
// been delivered (or skipped).
type queuedEvent struct {
	barrier int64
	event   chat.Event
}

// New returns a Sequencer that calls handle with the events given to
// Handle, in the order described in the package doc. handle is called with
// the Sequencer's lock held: it must not block for long and must not call
// Handle or Reset (Stats is fine).
func New(handle func(chat.Event), opts Options) *Sequencer {
	s := &Sequencer{
		handle:   handle,
		hold:     opts.Hold,
		maxConvs: opts.MaxConvs,
		maxHeld:  opts.MaxHeld,
		fetch:    opts.Fetch,
		log:      opts.Logger,
		now:      opts.Now,
		onMissed: opts.OnMissed,
		cursorFn: opts.Cursor,
		wake:     make(chan struct{}, 1),
		convs:    make(map[chat.ConversationID]*conv),
		waiting:  make(map[chat.ConversationID]*conv),
	}
	s.floor.Store(math.MaxInt64)
	if s.hold <= 0 {
		s.hold = defaultHold
	}
	if s.maxConvs <= 0 {
		s.maxConvs = defaultMaxConvs
	}
	if s.maxHeld <= 0 {
		s.maxHeld = defaultMaxHeld
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.now == nil {
		s.now = time.Now
	}
	// Run checks deadlines on a ticker rather than on timers computed from
	// Now, so that an injected clock works; a tenth of Hold keeps the
	// error small.
	s.tick = min(max(s.hold/10, time.Millisecond), 50*time.Millisecond)
	s.lru.next, s.lru.prev = &s.lru, &s.lru
	return s
}

// Stats returns the counters. It does not take the lock.
func (s *Sequencer) Stats() Stats {
	return Stats{
		Reordered:   s.reordered.Load(),
		Fetched:     s.fetched.Load(),
		Duplicates:  s.duplicates.Load(),
		FetchErrors: s.fetchErrors.Load(),
		Skipped:     s.skipped.Load(),
		Evicted:     s.evicted.Load(),
		Late:        s.late.Load(),
	}
}

// Handle delivers, holds, queues or drops e (see the package doc). It does
// no I/O; it blocks only while another delivery runs.
func (s *Sequencer) Handle(e chat.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.Kind != chat.EventMessage || e.Message == nil {
		s.passLocked(e)
		return
	}
	seq := e.Message.Seq
	c := s.convs[e.Conv]
	if c == nil {
		c = s.addLocked(e.Conv)
		if seq <= 1 {
			c.last = seq
			s.handle(e)
			return
		}
		// A message of this conversation that another node committed
		// just before may be overtaking it: wait Hold for it (see fresh).
		c.fresh = true
		s.holdLocked(c, e)
		return
	}
	s.touchLocked(c)
	switch {
	case seq < c.start:
		s.late.Add(1)
		s.log.Warn("sequencer: a message arrived after its conversation started above it", "conv", c.id, "seq", seq, "start", c.start)
		s.missedLocked(c.id)
	case seq <= c.last:
		s.duplicates.Add(1)
	case seq == c.last+1:
		c.fresh = false
		c.last = seq
		s.handle(e)
		if len(c.held) > 0 {
			s.releaseLocked(c)
			if len(c.held) > 0 {
				// A new gap: it gets its own hold.
				c.deadline = s.now().Add(s.hold)
				c.attempts = 0
			}
		}
	default:
		s.holdLocked(c, e)
	}
}

// Reset delivers what every conversation holds, then forgets all
// conversations: the next message of each is delivered as is. Fetches in
// flight are ignored when they return.
func (s *Sequencer) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.waiting {
		s.skipLocked(c, "reset")
	}
	clear(s.convs)
	clear(s.waiting)
	s.refloorLocked()
	s.lru.next, s.lru.prev = &s.lru, &s.lru
	s.epoch++
}

// passLocked delivers an event that is not sequenced, or queues it behind
// the messages its conversation holds.
func (s *Sequencer) passLocked(e chat.Event) {
	c := s.convs[e.Conv]
	if c == nil || len(c.held) == 0 {
		s.handle(e)
		return
	}
	c.queued = append(c.queued, queuedEvent{barrier: c.held[len(c.held)-1].Message.Seq, event: e})
	s.checkBoundLocked(c)
}

// holdLocked keeps message event e (seq > last+1) until the messages before
// it are delivered.
func (s *Sequencer) holdLocked(c *conv, e chat.Event) {
	seq := e.Message.Seq
	i, found := slices.BinarySearchFunc(c.held, seq, func(h chat.Event, seq int64) int {
		return cmp.Compare(h.Message.Seq, seq)
	})
	if found {
		s.duplicates.Add(1)
		return
	}
	c.held = slices.Insert(c.held, i, e)
	if len(c.held) == 1 && len(c.queued) == 0 {
		c.deadline = s.now().Add(s.hold)
		c.attempts = 0
		if s.cursorFn != nil {
			c.floor = s.cursorFn()
		}
		s.waiting[c.id] = c
		s.refloorLocked()
		s.wakeRun()
	}
	s.checkBoundLocked(c)
}

// checkBoundLocked makes c's gap due at once when c holds MaxHeld events,
// and skips it when c holds more.
func (s *Sequencer) checkBoundLocked(c *conv) {
	switch n := len(c.held) + len(c.queued); {
	case n > s.maxHeld:
		s.skipLocked(c, "too many held events")
	case n == s.maxHeld:
		c.deadline = s.now()
		s.wakeRun()
	}
}

// releaseLocked delivers the held messages that follow c.last without a
// gap, and the queued events whose barrier they pass, in order.
func (s *Sequencer) releaseLocked(c *conv) {
	h, q := 0, 0
	for {
		for q < len(c.queued) && c.queued[q].barrier <= c.last {
			s.handle(c.queued[q].event)
			q++
		}
		if h == len(c.held) || c.held[h].Message.Seq != c.last+1 {
			break
		}
		c.last++
		c.fresh = false
		s.handle(c.held[h])
		h++
	}
	s.reordered.Add(int64(h))
	c.held = slices.Delete(c.held, 0, h)
	c.queued = slices.Delete(c.queued, 0, q)
	if len(c.held) == 0 {
		s.settleLocked(c)
	}
}

// skipLocked delivers everything c holds, past the missing messages.
func (s *Sequencer) skipLocked(c *conv, reason string) {
	for len(c.held) > 0 {
		next := c.held[0].Message.Seq
		s.skipped.Add(1)
		s.log.Warn("sequencer: skipped missing messages: "+reason, "conv", c.id, "seq", c.last+1)
		c.last = next - 1
		c.fresh = false
		s.releaseLocked(c)
		s.missedLocked(c.id)
	}
	s.settleLocked(c)
}

// Floor returns, while some conversation waits for a missing message, the
// lowest sync cursor the node had when one of them started waiting (the
// missing message may lie just above it, so clients must not be given a
// higher cursor until it is delivered), and math.MaxInt64 otherwise. It
// takes no lock, so a handler may call it.
func (s *Sequencer) Floor() int64 { return s.floor.Load() }

func (s *Sequencer) refloorLocked() {
	f := int64(math.MaxInt64)
	for _, c := range s.waiting {
		f = min(f, c.floor)
	}
	s.floor.Store(f)
}

// missedLocked reports that messages of conv were not handed on in order.
func (s *Sequencer) missedLocked(conv chat.ConversationID) {
	if s.onMissed != nil {
		s.onMissed(conv)
	}
}

// settleLocked ends c's wait once it holds nothing.
func (s *Sequencer) settleLocked(c *conv) {
	// By the invariant on queued there is nothing to deliver here; if
	// there were, losing it would be worse than delivering it late.
	for _, q := range c.queued {
		s.handle(q.event)
	}
	clear(c.queued)
	c.queued = c.queued[:0]
	if cap(c.held) > keptCapacity {
		c.held = nil
	}
	if cap(c.queued) > keptCapacity {
		c.queued = nil
	}
	c.attempts = 0
	delete(s.waiting, c.id)
	s.refloorLocked()
}

// addLocked creates the state of conversation id, forgetting the least
// recently used conversation if there are too many.
func (s *Sequencer) addLocked(id chat.ConversationID) *conv {
	if len(s.convs) >= s.maxConvs {
		old := s.lru.prev
		if len(old.held) > 0 {
			s.skipLocked(old, "conversation evicted")
		}
		old.prev.next, old.next.prev = old.next, old.prev
		delete(s.convs, old.id)
		s.evicted.Add(1)
	}
	c := &conv{id: id}
	s.convs[id] = c
	c.prev, c.next = &s.lru, s.lru.next
	c.next.prev = c
	s.lru.next = c
	return c
}

// touchLocked marks c as the most recently used conversation.
func (s *Sequencer) touchLocked(c *conv) {
	if s.lru.next == c {
		return
	}
	c.prev.next, c.next.prev = c.next, c.prev
	c.prev, c.next = &s.lru, s.lru.next
	c.next.prev = c
	s.lru.next = c
}

// wakeRun makes Run look for due gaps without waiting for its next tick.
func (s *Sequencer) wakeRun() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}
