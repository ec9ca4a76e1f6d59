package app

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/natter-chat/natter/internal/natsbus"
)

// nodeCheckInterval is how often a cluster node looks for nodes that are
// gone without a goodbye.
const nodeCheckInterval = 250 * time.Millisecond

// startCursor wires the node's cursor clock to the node and publishes the
// node's first watermark: the node has committed nothing yet, so any
// position is true of it, and once the server has it (the flush), every
// node that is connected receives it before any event of this node.
func (c *clusterParts) startCursor(ctx context.Context, a *App) error {
	node, holder := c.lease.ID(), c.lease.Holder()
	c.clock.publish = func(ctx context.Context) error {
		return a.svc.Settled(ctx, func(pos int64) error {
			return c.bus.PublishWatermark(ctx, natsbus.Watermark{Node: node, Holder: holder, Pos: pos})
		})
	}
	c.clock.connected = func() (bool, uint64) { return c.nc.IsConnected(), c.nc.Stats().Reconnects }
	c.clock.reconnect = func() {
		if a.ws != nil {
			a.ws.Reconnect(a.cfg.DrainJitter)
		}
	}
	pos, err := a.store.Position(ctx)
	if err != nil {
		return fmt.Errorf("first watermark: %w", err)
	}
	if err := c.bus.PublishWatermark(ctx, natsbus.Watermark{Node: node, Holder: holder, Pos: pos}); err != nil {
		return fmt.Errorf("first watermark: %w", err)
	}
	if err := c.nc.FlushTimeout(5 * time.Second); err != nil {
		return fmt.Errorf("first watermark: NATS at %s: %w", a.cfg.Bus, err)
	}
	return nil
}

// run keeps the cursor current until ctx is done: it publishes this node's
// watermark every interval, and makes this node's clients reconnect
// before it drops a node that is gone without a goodbye (see cursorClock).
func (c *cursorClock) run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { c.publishWatermarks(ctx) })
	wg.Go(func() { c.dropGoneNodes(ctx) })
	wg.Wait()
}

// publishWatermarks publishes this node's watermark every interval while
// its NATS connection is up. A failure (the store unreachable, the
// connection lost meanwhile) leaves the others' cursors where they are,
// which is safe; it is logged once until a watermark goes out again.
func (c *cursorClock) publishWatermarks(ctx context.Context) {
	t := time.NewTicker(c.interval)
	defer t.Stop()
	failing := false
	for {
		if up, _ := c.connected(); up {
			switch err := c.publish(ctx); {
			case err != nil && ctx.Err() == nil && !failing:
				failing = true
				c.log.Warn("cannot publish this node's watermark; the cluster's sync cursors wait", "err", err)
			case err == nil && failing:
				failing = false
				c.log.Info("this node's watermarks are published again")
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// dropGoneNodes looks for nodes gone without a goodbye every
// nodeCheckInterval: this node's clients are told to reconnect, then the
// nodes stop holding the cursor. While this node's own NATS connection is
// down, or just came back, the silence of the others says nothing, and
// their timers restart.
func (c *cursorClock) dropGoneNodes(ctx context.Context) {
	t := time.NewTicker(nodeCheckInterval)
	defer t.Stop()
	_, reconnects := c.connected()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		up, r := c.connected()
		if !up || r != reconnects {
			reconnects = r
			c.restart()
			continue
		}
		if gone := c.due(); len(gone) > 0 {
			c.log.Warn("nodes are gone without a goodbye: their last changes may not have reached this node; clients will reconnect and catch up", "holders", gone)
			c.reconnect()
			c.drop(gone)
		}
	}
}
