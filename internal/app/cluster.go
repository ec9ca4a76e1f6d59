package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/natsbus"
	"github.com/natter-chat/natter/internal/sequencer"
)

// clusterParts are a cluster node's NATS pieces: the connection, the bus
// on it, presence in JetStream KV, the node id lease and the watch of the
// other nodes' leases.
type clusterParts struct {
	nc       *nats.Conn
	bus      *natsbus.Bus
	presence *natsbus.Presence
	lease    *natsbus.Lease
	nodes    *natsbus.NodeWatch
	seq      *sequencer.Sequencer // set by wrapHandler
	clock    *cursorClock         // the sync cursor live frames carry (see cursor.go)
	stopWait chan struct{}        // closed by close: ends the lease watcher
}

// joinCluster connects to NATS, leases a node id, starts presence and
// publishes the node's first watermark (before the node can commit
// anything, so that no change of it ever lies below another node's
// cursor unseen). A node id lease that is lost later (NATS unreachable
// for longer than the lease lasts, or taken over) stops the node through
// a.fatal: two nodes must never make ids with the same node id.
// Config.CursorLag is no longer used: the cursor follows the nodes'
// watermarks, whatever time events take.
func (a *App) joinCluster(ctx context.Context) (*clusterParts, error) {
	cfg := a.cfg
	name := cfg.Cluster
	if name == "" {
		name = "natter"
	}
	leaseTTL := cfg.NodeLeaseTTL
	if leaseTTL <= 0 {
		leaseTTL = 2 * time.Minute
	}
	c := &clusterParts{stopWait: make(chan struct{}), clock: newCursorClock(leaseTTL, nil, a.log)}
	nc, err := nats.Connect(cfg.Bus,
		nats.Name("natter node"),
		nats.MaxReconnects(-1), // a node never gives up on NATS
		nats.ReconnectWait(250*time.Millisecond),
		nats.ReconnectJitter(250*time.Millisecond, time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil when the node closes the connection itself
				a.log.Warn("NATS connection lost; reconnecting", "err", err)
				c.suspectLoss()
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { a.log.Info("NATS connection back", "server", nc.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			a.log.Warn("NATS error", "err", err)
			// Only the bus's own subscription (<cluster>.>) carries events;
			// only its losses thaw the cursor again (the bus reports them
			// within a second). A slow presence or lease watcher must not
			// freeze it for good.
			if errors.Is(err, nats.ErrSlowConsumer) && (sub == nil || sub.Subject == name+".>") {
				c.suspectLoss()
			}
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", cfg.Bus, err)
	}
	c.nc = nc
	if err := nc.FlushTimeout(5 * time.Second); err != nil {
		nc.Close()
		return nil, fmt.Errorf("NATS at %s: %w", cfg.Bus, err)
	}
	ok := false
	defer func() {
		if !ok {
			if c.presence != nil {
				c.presence.Close()
			}
			c.close()
		}
	}()
	c.lease, err = natsbus.AcquireNodeID(ctx, nc, natsbus.LeaseOptions{
		Bucket: name + "_nodes", TTL: leaseTTL, Refresh: leaseTTL / 6, Want: cfg.NodeID, Replicas: cfg.NATSReplicas, Logger: a.log,
	})
	if err != nil {
		return nil, fmt.Errorf("node id: %w", err)
	}
	c.clock.setSelf(c.lease.Holder())
	c.nodes, err = natsbus.WatchNodes(ctx, nc, natsbus.NodeWatchOptions{Bucket: name + "_nodes", Logger: a.log, OnChange: c.clock.lease})
	if err != nil {
		return nil, fmt.Errorf("node leases: %w", err)
	}
	// Wait for a silent node as long as its lease can live, by this
	// node's TTL or the bucket's, whichever is longer.
	c.clock.setExpiry(max(leaseTTL, c.nodes.TTL()))
	go func() {
		select {
		case <-c.lease.Lost():
			select {
			case a.fatal <- fmt.Errorf("node id %d lease lost: stopping before another node can take the id", c.lease.ID()):
			default:
			}
		case <-c.stopWait:
		}
	}()
	ttl := cfg.PresenceTTL
	if ttl <= 0 {
		ttl = 15 * time.Second
	}
	c.presence, err = natsbus.NewPresence(ctx, nc, natsbus.PresenceOptions{
		Bucket: name + "_presence", Node: fmt.Sprintf("n%d", c.lease.ID()), Replicas: cfg.NATSReplicas,
		TTL: ttl, Refresh: ttl / 3, Grace: cfg.PresenceGrace, Logger: a.log,
	})
	if err != nil {
		return nil, fmt.Errorf("presence: %w", err)
	}
	// A node can be away from NATS for up to its lease TTL (this node's or
	// the bucket's, whichever is longer, as the cursor waits) and come back
	// alive: the others must still know where its sequence stood.
	c.bus, err = natsbus.New(nc, natsbus.Options{Prefix: name, Logger: a.log, OnWatermark: c.clock.mark, OnLoss: func(dropped int) { c.lost(a, dropped) },
		PublisherIdle: max(10*time.Minute, 2*max(leaseTTL, c.nodes.TTL()))})
	if err != nil {
		return nil, err
	}
	if err := c.startCursor(ctx, a); err != nil {
		return nil, err
	}
	ok = true
	return c, nil
}

// lost handles events that never reached this node (the bus's OnLoss):
// its clients are told to reconnect (after jitter) and catch up from their
// cursors, which were given before the loss.
func (c *clusterParts) lost(a *App, dropped int) {
	a.log.Warn("events were lost on the way to this node; clients will reconnect and catch up", "dropped", dropped)
	if c.seq != nil {
		c.seq.Reset()
	}
	if a.ws != nil {
		a.ws.Reconnect(a.cfg.DrainJitter)
	}
	// Every client of this node was told to catch up from a cursor it got
	// before the loss: frames may carry newer cursors again.
	c.clock.thaw()
}

// suspectLoss holds the sync cursor still: events may be missing until the
// bus reports the loss and the node's clients are told to reconnect (which
// thaws it).
func (c *clusterParts) suspectLoss() { c.clock.freeze() }

// wrapHandler returns the bus handler for this node's hub: events from
// every node pass a sequencer, which hands each conversation's messages
// on in seq order, without duplicates, fetching from the store what is
// late (see package sequencer). Nodes publish after their commits, in
// their own order, so two nodes' messages of one conversation can cross
// on the way to a third.
func (c *clusterParts) wrapHandler(a *App, handle func(chat.Event)) func(chat.Event) {
	store := a.store
	c.seq = sequencer.New(handle, sequencer.Options{
		Logger: a.log,
		Cursor: c.clock.cursor,
		// Messages this node could not hand on in order: the clients of
		// the conversation's members catch up from their cursors (which
		// Floor kept below them).
		OnMissed: func(conv chat.ConversationID) { c.reconnectMembers(a, conv) },
		Fetch: func(ctx context.Context, conv chat.ConversationID, after int64, limit int) ([]chat.Message, error) {
			return store.ListMessages(ctx, chat.MessageQuery{Conv: conv, After: after, Forward: true, Limit: limit})
		},
	})
	return c.seq.Handle
}

// reconnectMembers tells this node's clients of the members of conv to
// reconnect and catch up, after messages of conv were not handed on in
// order (see sequencer.Options.OnMissed). Nobody else can have missed
// them: a client receives conv's messages live only while the hub knows
// its user as a member, its sync stream carries only changes of the
// conversations its user is in. Users whose conversations are still
// loading are told too (ConnsIn includes them). A member the hub learns
// of later either connected meanwhile (its catch-up comes after the miss)
// or was added to conv (its conversation frame makes it load conv's
// history).
//
// The members' cursors are below the missed message: no frame's cursor
// passes a change before the change's event has reached this node (see
// cursorClock), nor, while the sequencer waits for a message, the cursor
// it noted when it started waiting (Floor). After the miss the cursor may
// move on; but the sequencer calls this with its lock held, the lock under
// which the hub hands on every event, so the reconnect frame is queued on
// each of these connections before any frame with such a cursor. Queueing
// never blocks, and a burst of misses of one conversation tells each
// connection once (see wsapi.Handler.ReconnectConns).
func (c *clusterParts) reconnectMembers(a *App, conv chat.ConversationID) {
	if a.ws == nil || a.hub == nil {
		return
	}
	if conns := a.hub.ConnsIn(conv); len(conns) > 0 {
		a.ws.ReconnectConns(conns, a.cfg.DrainJitter)
	}
}

// ready reports whether the node can serve: it holds its node id lease.
// A node whose NATS connection is down still serves (sends are stored and
// acknowledged; live delivery between nodes waits for NATS, and clients
// catch up when it is back): failing readiness on NATS alone would take
// every node out of the load balancer at once.
func (c *clusterParts) ready() error {
	if !c.lease.Valid() {
		return chat.Errorf(chat.CodeUnavailable, "node id lease not held")
	}
	return nil
}

// close says goodbye, releases the lease and closes the connection after
// flushing what is still buffered (events published during a reconnect
// among them). The app calls it once the core has stopped (so this node
// commits nothing more), after closing presence. The goodbye, a final
// watermark after the node's last event, lets the other nodes stop
// waiting for it without making their clients reconnect; when it cannot
// be sent (NATS away) they time the node out and do make them reconnect,
// since its last events may be lost with the connection.
func (c *clusterParts) close() {
	select {
	case <-c.stopWait:
		return
	default:
		close(c.stopWait)
	}
	if c.nodes != nil {
		c.nodes.Close()
	}
	if c.bus != nil && c.lease != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if c.bus.PublishWatermark(ctx, natsbus.Watermark{Node: c.lease.ID(), Holder: c.lease.Holder(), Final: true}) == nil {
			_ = c.nc.FlushWithContext(ctx)
		}
		cancel()
	}
	if c.lease != nil {
		c.lease.Close()
	}
	_ = c.nc.FlushTimeout(2 * time.Second)
	c.nc.Close()
}
