package app

import (
	"context"
	"sync"
	"time"
)

// cursorClock gives a cluster node's sync cursor: a change position such
// that every change at or below it was committed at least lag ago, and so
// (events travelling between nodes within lag) has reached this node's hub
// already. Nodes publish their events after their own commits, so events of
// different nodes arrive in no particular position order: a frame's own
// position is not a safe place to resume from, this cursor is. An event
// that is lost or later than lag makes a node tell its clients to reconnect
// (natsbus reports it), which covers the rest.
//
// It samples the store's newest position every interval and keeps the
// samples of the last lag (plus the newest older one).
type cursorClock struct {
	lag      time.Duration
	interval time.Duration
	position func(ctx context.Context) (int64, error)

	mu      sync.Mutex
	samples []positionSample // ascending in time
	// frozen, while positive, is the cursor to give until thaw: set when
	// this node may be missing events (its NATS connection dropped, or
	// NATS dropped events for it) and until its clients were told to
	// reconnect.
	frozen int64
}

// freeze holds the cursor where it is until thaw.
func (c *cursorClock) freeze() {
	cur := c.cursor()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.frozen == 0 {
		c.frozen = max(cur, 1)
	}
}

// thaw lets the cursor follow the samples again.
func (c *cursorClock) thaw() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.frozen = 0
}

type positionSample struct {
	at  time.Time // when the position was read: every change at or below pos committed before
	pos int64
}

func newCursorClock(position func(ctx context.Context) (int64, error), lag, interval time.Duration) *cursorClock {
	return &cursorClock{position: position, lag: lag, interval: interval}
}

// run samples the position until ctx is done. A failed read leaves the
// cursor where it was (it then lags more, which is safe).
func (c *cursorClock) run(ctx context.Context) {
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		rctx, cancel := context.WithTimeout(ctx, c.interval*4)
		pos, err := c.position(rctx)
		cancel()
		if err == nil {
			c.add(positionSample{at: time.Now(), pos: pos})
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (c *cursorClock) add(s positionSample) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.samples = append(c.samples, s)
	// Keep one sample older than lag: the one cursor answers with.
	horizon := s.at.Add(-c.lag)
	drop := 0
	for drop+1 < len(c.samples) && !c.samples[drop+1].at.After(horizon) {
		drop++
	}
	c.samples = c.samples[drop:]
}

// cursor returns the newest sampled position read at least lag ago, or 0
// when there is none yet (clients then keep the cursor they have).
func (c *cursorClock) cursor() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	// Read the clock under the lock: add drops samples by its own clock,
	// and a horizon read earlier could fall before every sample it kept.
	horizon := time.Now().Add(-c.lag)
	if c.frozen > 0 {
		return c.frozen
	}
	var pos int64
	for _, s := range c.samples {
		if s.at.After(horizon) {
			break
		}
		pos = s.pos
	}
	return pos
}
