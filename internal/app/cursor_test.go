package app

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// The cursor only ever names positions read at least lag ago, never goes
// down, and keeps a bounded number of samples.
func TestCursorClock_LagsBehindTheStore(t *testing.T) {
	var pos atomic.Int64
	c := newCursorClock(func(context.Context) (int64, error) { return pos.Add(1), nil }, 200*time.Millisecond, 10*time.Millisecond)
	if got := c.cursor(); got != 0 {
		t.Fatalf("cursor before any sample = %d, want 0", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.run(ctx) }()
	defer func() { cancel(); <-done }()

	deadline := time.Now().Add(10 * time.Second)
	var last int64
	for time.Now().Before(deadline) {
		started := pos.Load() // read before the cursor: what the store had then
		got := c.cursor()
		if got < last {
			t.Fatalf("cursor went down from %d to %d", last, got)
		}
		last = got
		if got > started {
			t.Fatalf("cursor %d is ahead of the store's %d", got, started)
		}
		if got > 0 {
			// What was read less than lag ago must not be named yet.
			c.mu.Lock()
			for _, s := range c.samples {
				if s.pos == got && time.Since(s.at) < c.lag {
					c.mu.Unlock()
					t.Fatalf("cursor %d was read only %s ago, less than the lag %s", got, time.Since(s.at), c.lag)
				}
			}
			n := len(c.samples)
			c.mu.Unlock()
			if n > 100 {
				t.Fatalf("%d samples kept for a lag of 20 intervals", n)
			}
			if last > 30 {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("the cursor never moved past 30 (last %d)", last)
}

// While frozen (the node may be missing events), the cursor stays where it
// was, however far the store moves; thawed, it follows the store again.
func TestCursorClock_FreezeHoldsTheCursor(t *testing.T) {
	c := newCursorClock(nil, time.Millisecond, time.Millisecond)
	c.add(positionSample{at: time.Now().Add(-time.Second), pos: 10})
	if got := c.cursor(); got != 10 {
		t.Fatalf("cursor = %d, want 10", got)
	}
	c.freeze()
	c.add(positionSample{at: time.Now().Add(-time.Second / 2), pos: 20})
	if got := c.cursor(); got != 10 {
		t.Fatalf("frozen cursor = %d, want 10", got)
	}
	c.freeze() // a second suspicion keeps the first, lower cursor
	c.thaw()
	if got := c.cursor(); got != 20 {
		t.Fatalf("thawed cursor = %d, want 20", got)
	}
}
