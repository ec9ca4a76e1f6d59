package natsbus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/natter-chat/natter/internal/chat"
)

// Options configures a Bus. The zero value is usable.
type Options struct {
	// Prefix is the first token of every subject; empty means "natter".
	// It must be a valid NATS token ([A-Za-z0-9_-]+).
	Prefix string
	// QueueSize is how many events a subscription holds before NATS drops
	// further ones for it (a slow consumer); zero means 65,536.
	QueueSize int
	// Logger receives a warning for every detected loss; nil means discard.
	Logger *slog.Logger
	// OnLoss, if set, is called from a subscription's goroutine (never
	// while its handler runs) when the subscription has missed events:
	// dropped > 0 events were dropped because its queue was full, or
	// dropped == 0 when its connection was lost and re-established, so an
	// unknown number of events never arrived, or when another node says
	// (on <prefix>.control.lost, after its own reconnect) that events it
	// published meanwhile were lost or will arrive late. It must not
	// block; the node can tell its clients to sync.
	OnLoss func(dropped int)
}

// Stats counts what a Bus did since New.
type Stats struct {
	Published    int64 // events handed to NATS
	Delivered    int64 // events handed to subscription handlers
	Dropped      int64 // events NATS dropped for full subscription queues
	Reconnects   int64 // reconnects seen by subscriptions: events may have been lost
	DecodeErrors int64 // payloads that were not an event (ignored)
	// Subscriptions is the number of live NATS subscriptions (one per
	// Subscribe); with interest-based subscriptions it would be the gauge
	// to watch.
	Subscriptions int64
}

// Bus is chat.Bus on core NATS. It is safe for concurrent use; create it
// with New. It does not own the connection: the caller closes it after
// cancelling the subscriptions.
type Bus struct {
	nc        *nats.Conn
	prefix    string
	queueSize int
	log       *slog.Logger
	onLoss    func(int)

	// controlLost is the subject on which a node that was away from NATS
	// tells the others that its events may be lost or late (payload: id).
	controlLost string
	id          string // this Bus's random id

	published, delivered, dropped, reconnects, decodeErrors, subscriptions atomic.Int64
}

var _ chat.Bus = (*Bus)(nil)

// lossCheckInterval is how often a subscription looks for dropped events
// and reconnects.
const lossCheckInterval = time.Second

// subscribeTimeout bounds the round trip that makes sure the server knows
// a new subscription before Subscribe returns.
const subscribeTimeout = 10 * time.Second

var tokenPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// New returns a bus on nc. It returns an invalid_argument error for a nil
// connection or an invalid prefix.
func New(nc *nats.Conn, opts Options) (*Bus, error) {
	if nc == nil {
		return nil, chat.Errorf(chat.CodeInvalidArgument, "natsbus: no NATS connection")
	}
	if opts.Prefix == "" {
		opts.Prefix = "natter"
	}
	if !tokenPattern.MatchString(opts.Prefix) {
		return nil, chat.Errorf(chat.CodeInvalidArgument, "natsbus: subject prefix %q is not a NATS token ([A-Za-z0-9_-]+)", opts.Prefix)
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 1 << 16
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	return &Bus{nc: nc, prefix: opts.Prefix, queueSize: opts.QueueSize, log: opts.Logger, onLoss: opts.OnLoss,
		controlLost: opts.Prefix + ".control.lost", id: hex.EncodeToString(id[:])}, nil
}

// Stats returns the bus's counters.
func (b *Bus) Stats() Stats {
	return Stats{
		Published:     b.published.Load(),
		Delivered:     b.delivered.Load(),
		Dropped:       b.dropped.Load(),
		Reconnects:    b.reconnects.Load(),
		DecodeErrors:  b.decodeErrors.Load(),
		Subscriptions: b.subscriptions.Load(),
	}
}

// subject returns the subject e is published on (see the package doc).
func (b *Bus) subject(e chat.Event) (string, error) {
	switch {
	case e.Conv != 0:
		return b.prefix + ".conv." + strconv.FormatInt(int64(e.Conv), 10), nil
	case len(e.Users) > 0:
		return b.prefix + ".user." + strconv.FormatInt(int64(e.Users[0]), 10), nil
	default:
		return "", chat.Errorf(chat.CodeInvalidArgument, "natsbus: a %q event needs a conversation or a user", e.Kind)
	}
}

// Publish hands e to the connection, which sends it to the server in the
// order of Publish calls (nats.go's flusher writes it out at once; Publish
// does not wait for a round trip). It does not wait for subscribers. It
// returns ctx's error if ctx is done, an invalid_argument error for an
// event with neither conversation nor user, and an unavailable error when
// the connection is closed or its reconnect buffer is full.
func (b *Bus) Publish(ctx context.Context, e chat.Event) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("natsbus.Publish: %w", err)
	}
	subj, err := b.subject(e)
	if err != nil {
		return err
	}
	data, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("natsbus.Publish: encode %s event: %w", e.Kind, err)
	}
	if err := b.nc.Publish(subj, data); err != nil {
		return chat.Unavailable("natsbus.Publish", err)
	}
	b.published.Add(1)
	return nil
}

// Subscribe subscribes to every event of the cluster (<prefix>.>) and calls
// handle for each, from one goroutine, in the order the connection received
// them. Events published after Subscribe returns reach it (it waits until
// the server has the subscription; with a cluster of NATS servers, interest
// spreads to the other servers shortly after). The subscription holds
// Options.QueueSize events; beyond that NATS drops events for it, which is
// counted and reported (see Options.OnLoss). It ends when ctx is done or
// cancel is called; cancel waits until handle is no longer running and
// must not be called from handle. Subscribe returns an unavailable error
// when the subscription cannot be made.
func (b *Bus) Subscribe(ctx context.Context, handle func(chat.Event)) (cancel func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("natsbus.Subscribe: %w", err)
	}
	ch := make(chan *nats.Msg, b.queueSize)
	ns, err := b.nc.ChanSubscribe(b.prefix+".>", ch)
	if err != nil {
		return nil, chat.Unavailable("natsbus.Subscribe", err)
	}
	fctx, stop := context.WithTimeout(ctx, subscribeTimeout)
	err = b.nc.FlushWithContext(fctx)
	stop()
	if err != nil {
		_ = ns.Unsubscribe()
		return nil, chat.Unavailable("natsbus.Subscribe", err)
	}
	s := &subscription{b: b, sub: ns, ch: ch, stop: make(chan struct{}), done: make(chan struct{})}
	b.subscriptions.Add(1)
	go s.run(ctx, handle)
	return s.cancel, nil
}

// subscription is one Subscribe: a NATS channel subscription drained by
// its own goroutine.
type subscription struct {
	b    *Bus
	sub  *nats.Subscription
	ch   chan *nats.Msg
	once sync.Once
	stop chan struct{}
	done chan struct{} // closed when run has returned
}

func (s *subscription) cancel() {
	s.once.Do(func() { close(s.stop) })
	<-s.done
}

func (s *subscription) run(ctx context.Context, handle func(chat.Event)) {
	defer close(s.done)
	defer func() {
		_ = s.sub.Unsubscribe()
		s.b.subscriptions.Add(-1)
	}()
	tick := time.NewTicker(lossCheckInterval)
	defer tick.Stop()
	var (
		dropped       int
		reconnects    = s.b.nc.Stats().Reconnects
		decodeErrors  int64
		lastDecodeErr error
	)
	for {
		select {
		case <-s.stop:
			return
		case <-ctx.Done():
			return
		case m := <-s.ch:
			if m.Subject == s.b.controlLost {
				if string(m.Data) != s.b.id { // not our own notice
					s.b.log.Warn("natsbus: another node's events may have been lost or delayed; clients must sync", "from", string(m.Data))
					s.lost(0)
				}
				continue
			}
			var e chat.Event
			if err := json.Unmarshal(m.Data, &e); err != nil {
				decodeErrors++
				lastDecodeErr = fmt.Errorf("subject %s: %w", m.Subject, err)
				continue
			}
			handle(e)
			s.b.delivered.Add(1)
		case <-tick.C:
			if decodeErrors > 0 {
				s.b.decodeErrors.Add(decodeErrors)
				s.b.log.Warn("natsbus: ignored payloads that are not events", "count", decodeErrors, "err", lastDecodeErr)
				decodeErrors = 0
			}
			if d, err := s.sub.Dropped(); err == nil && d > dropped {
				n := d - dropped
				dropped = d
				s.b.dropped.Add(int64(n))
				s.b.log.Warn("natsbus: subscriber too slow, NATS dropped events; clients must sync", "dropped", n)
				s.lost(n)
			}
			if r := s.b.nc.Stats().Reconnects; r > reconnects {
				reconnects = r
				s.b.reconnects.Add(1)
				s.b.log.Warn("natsbus: NATS connection was re-established; events published meanwhile are lost, clients must sync")
				s.lost(0)
				// What this node published while away was lost or sent
				// late: the other nodes must not trust their cursors either.
				if err := s.b.nc.Publish(s.b.controlLost, []byte(s.b.id)); err != nil {
					s.b.log.Warn("natsbus: cannot tell the other nodes about the reconnect", "err", err)
				}
			}
		}
	}
}

func (s *subscription) lost(n int) {
	if s.b.onLoss != nil {
		s.b.onLoss(n)
	}
}
