package sequencer

import (
	"context"
	"sync"
	"time"

	"github.com/natter-chat/natter/internal/chat"
)

// gapFetch is one fetch of the gap of a conversation: the messages after
// seq after up to seq to.
type gapFetch struct {
	c         *conv
	epoch     uint64
	after, to int64
}

// Run fetches or skips the gaps that have been waited on for long enough,
// until ctx is done; it then waits for the fetches it started and returns.
// Call it once. While nothing is held it only waits.
func (s *Sequencer) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	ticker := time.NewTicker(s.tick)
	defer ticker.Stop()
	for {
		if !s.holding() {
			select {
			case <-ctx.Done():
				return
			case <-s.wake:
			}
		}
		for _, f := range s.startDue() {
			wg.Go(func() { s.fetchGap(ctx, f) })
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case <-s.wake:
		}
	}
}

// holding reports whether any conversation holds events.
func (s *Sequencer) holding() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.waiting) > 0
}

// startDue returns the fetches to start now, marking their conversations
// as fetching, and skips the due gaps that are not to be fetched.
func (s *Sequencer) startDue() []gapFetch {
	s.mu.Lock()
	defer s.mu.Unlock()
	var due []gapFetch
	now := s.now()
	for _, c := range s.waiting {
		if c.fetching || now.Before(c.deadline) {
			continue
		}
		to := c.held[0].Message.Seq - 1
		if c.fresh {
			// Nothing came before the first held message within Hold:
			// start the conversation there (nothing is skipped).
			c.fresh = false
			c.last = to
			c.start = to + 1
			s.releaseLocked(c)
			if len(c.held) > 0 {
				c.deadline = now.Add(s.hold)
				c.attempts = 0
			}
			continue
		}
		switch {
		case s.fetch == nil:
			s.skipLocked(c, "no fetch")
			continue
		case to-c.last > chat.MaxPageSize:
			s.skipLocked(c, "gap too wide to fetch")
			continue
		case s.inflight >= maxConcurrentFetches:
			continue // it stays due
		}
		c.fetching = true
		s.inflight++
		due = append(due, gapFetch{c: c, epoch: s.epoch, after: c.last, to: to})
	}
	return due
}

// fetchGap fetches the missing messages of f and applies them.
func (s *Sequencer) fetchGap(ctx context.Context, f gapFetch) {
	fctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	msgs, err := s.fetch(fctx, f.c.id, f.after, int(f.to-f.after))
	cancel()
	if ctx.Err() != nil {
		err = ctx.Err() // Run is stopping: not the store's fault
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Read the clock before anything observable changes, so that a test
	// that waits for the counters and then moves the clock cannot be
	// overtaken.
	now := s.now()
	s.inflight--
	c := f.c
	if f.epoch != s.epoch || s.convs[c.id] != c {
		return // forgotten meanwhile
	}
	c.fetching = false
	if ctx.Err() != nil {
		return
	}
	delivered := 0
	if err == nil {
		delivered = s.applyLocked(c, msgs)
	}
	switch {
	case len(c.held) == 0:
		// Filled (by the fetch or by arrivals meanwhile) or skipped.
	case delivered > 0:
		// The rest has waited as long as the gap just filled.
		c.attempts = 0
		c.deadline = now
		s.wakeRun()
	case c.last > f.after:
		// Arrivals filled the gap meanwhile; Handle gave the next one its
		// own hold.
	default:
		s.fetchErrors.Add(1)
		c.attempts++
		if err == nil {
			s.log.Warn("sequencer: fetch returned none of the missing messages", "conv", c.id, "seq", f.after+1)
		} else {
			s.log.Warn("sequencer: fetching missing messages", "conv", c.id, "seq", f.after+1, "err", err)
		}
		if c.attempts >= maxFetchAttempts {
			s.skipLocked(c, "fetch keeps failing")
			return
		}
		c.deadline = now.Add(s.hold << (c.attempts - 1))
	}
}

// applyLocked delivers the fetched messages that c still needs, interleaved
// with what it holds, and returns how many fetched ones it delivered. A
// held event wins over the fetched copy of the same message (it keeps its
// Origin).
func (s *Sequencer) applyLocked(c *conv, msgs []chat.Message) int {
	n := 0
	for i := range msgs {
		s.releaseLocked(c)
		m := &msgs[i]
		if m.Seq <= c.last {
			continue
		}
		if m.Seq != c.last+1 || len(c.held) == 0 {
			break // not contiguous, or nothing left to fill
		}
		c.last = m.Seq
		s.handle(chat.Event{Kind: chat.EventMessage, Conv: c.id, Message: m, Pos: m.Pos})
		n++
	}
	s.releaseLocked(c)
	s.fetched.Add(int64(n))
	return n
}
