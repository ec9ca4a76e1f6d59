// Package membus is chat.Bus and chat.Presence in process memory, for
// embedded mode: one node, no network.
//
// Each subscription has a bounded queue drained by its own goroutine.
// Delivery is lossless and in publish order: when a subscriber's queue is
// full, Publish waits for room (the hub's handler never blocks, so this is
// brief backpressure on the writer) or for ctx, and only then drops the
// event, counts it (Dropped) and reports it (BusOptions.OnDrop) before
// Publish returns. Lossless delivery lets a client treat the highest
// change position it has received live as its sync cursor; the report of
// a drop, made before any later event is queued, lets the node hold that
// cursor below the lost event. An event the publisher never published
// (a write whose commit has an unknown outcome) is reported the same way,
// by ReportLoss.
package membus

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/natter-chat/natter/internal/chat"
)

// Bus is an in-process chat.Bus. The zero value is not usable; call New.
type Bus struct {
	queueSize int
	onDrop    func(chat.Event)
	mu        sync.RWMutex
	subs      map[*sub]struct{}
	dropped   atomic.Int64
}

var (
	_ chat.Bus          = (*Bus)(nil)
	_ chat.LossReporter = (*Bus)(nil)
)

type sub struct {
	ch   chan chat.Event
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// BusOptions configures a Bus. Zero values are documented per field.
type BusOptions struct {
	QueueSize int // events each subscription queues; zero means 65,536
	// OnDrop, if not nil, is called with every event Publish drops for a
	// subscriber, from the publishing goroutine, before Publish moves on:
	// so before any event published after e can reach a subscriber. It
	// is also called by ReportLoss, with an empty chat.Event (one without
	// a position), before ReportLoss returns. It must not block or call
	// back into the bus (Publish holds its lock).
	OnDrop func(e chat.Event)
}

// New returns a bus whose subscriptions queue up to queueSize events each
// (zero means 65,536).
func New(queueSize int) *Bus { return NewBus(BusOptions{QueueSize: queueSize}) }

// NewBus returns a bus configured by opts.
func NewBus(opts BusOptions) *Bus {
	if opts.QueueSize <= 0 {
		opts.QueueSize = 1 << 16
	}
	return &Bus{queueSize: opts.QueueSize, onDrop: opts.OnDrop, subs: make(map[*sub]struct{})}
}

// Publish hands e to every subscription, waiting while a queue is full
// until ctx is done (then the event is dropped for that subscriber, and
// reported to BusOptions.OnDrop before Publish goes on).
func (b *Bus) Publish(ctx context.Context, e chat.Event) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for s := range b.subs {
		select {
		case s.ch <- e:
		default:
			select {
			case s.ch <- e:
			case <-s.stop:
			case <-ctx.Done():
				b.dropped.Add(1)
				if b.onDrop != nil {
					b.onDrop(e)
				}
			}
		}
	}
	return nil
}

// Dropped returns how many events were dropped for full subscriber queues.
// Losses reported by ReportLoss are not counted: the bus lost nothing, and
// the store fault behind them is logged where it happens (the core).
func (b *Bus) Dropped() int64 { return b.dropped.Load() }

// ReportLoss implements chat.LossReporter: the publisher has a change it
// will never publish (its commit's outcome is unknown), so it reports an
// event without a position to BusOptions.OnDrop, as for an event dropped
// at this point of the publish order. The call is synchronous: OnDrop has
// returned before ReportLoss does, so before anything the caller publishes
// next can reach a subscriber. Without OnDrop it does nothing.
func (b *Bus) ReportLoss() {
	if b.onDrop != nil {
		b.onDrop(chat.Event{})
	}
}

// Subscribe implements chat.Bus.
func (b *Bus) Subscribe(ctx context.Context, handle func(chat.Event)) (func(), error) {
	s := &sub{ch: make(chan chat.Event, b.queueSize), stop: make(chan struct{}), done: make(chan struct{})}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	go func() {
		defer close(s.done)
		for {
			select {
			case e := <-s.ch:
				handle(e)
			case <-s.stop:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	cancel := func() {
		s.once.Do(func() {
			b.mu.Lock()
			delete(b.subs, s)
			b.mu.Unlock()
			close(s.stop)
		})
		<-s.done
	}
	return cancel, nil
}
