package natsbus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
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
	// unknown number of events never arrived, when a publisher's sequence
	// skipped numbers on the way (reported before the message that
	// revealed the gap is handled), or when a node whose messages carry no
	// sequence (an older release) says, on <prefix>.control.lost after its
	// own reconnect, that events it published meanwhile were lost or will
	// arrive late. It must not block; the node can tell its clients to
	// sync.
	OnLoss func(dropped int)
	// OnWatermark, if set, is called from a subscription's goroutine, in
	// order with its events, for every watermark a node publishes (see
	// PublishWatermark): every event its publisher published before it
	// has been handed to the subscription's handler, or reported lost.
	// It must not block.
	OnWatermark func(Watermark)
	// PublisherIdle is how long a subscription remembers where a silent
	// publisher's sequence stood; zero means 10 minutes. A publisher
	// silent for longer is forgotten, and a gap at its return would go
	// unseen: keep it above the longest a live node can be away (its node
	// id lease TTL).
	PublisherIdle time.Duration
}

// Watermark is a node's promise about its own events: before this
// watermark it published the event of every change it committed at or
// below Pos. Final marks the last watermark of a node that stops cleanly:
// it commits nothing more, so the others need not wait for it.
type Watermark struct {
	Node   int64  // the node id
	Holder string // the holder of the node id's lease: which incarnation of Node
	Pos    int64  // a change position
	Final  bool
}

// Stats counts what a Bus did since New.
type Stats struct {
	Published    int64 // events handed to NATS
	Delivered    int64 // events handed to subscription handlers
	Dropped      int64 // events NATS dropped for full subscription queues
	Reconnects   int64 // reconnects seen by subscriptions: events may have been lost
	Gaps         int64 // skips in a publisher's sequence: messages lost between it and a subscription
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
	onMark    func(Watermark)
	// publisherIdle is Options.PublisherIdle, filled in.
	publisherIdle time.Duration

	// controlLost is the subject on which a node that was away from NATS
	// tells the others that its events may be lost or late (payload: id).
	controlLost string
	// watermarks is the subject of the nodes' watermarks.
	watermarks string
	id         string // this Bus's random id: the publisher in every envelope

	// pubMu orders numbering and publishing, so that the numbers of this
	// Bus's messages increase in the order NATS receives them.
	pubMu  sync.Mutex
	pubSeq uint64 // guarded by pubMu: the number of the last message published

	published, delivered, dropped, reconnects, gaps, decodeErrors, subscriptions atomic.Int64
}

// envelope is how an event travels: chat.Event's fields plus the
// publisher's id and the message's number in its sequence. Nodes that do
// not know the two extra fields ignore them.
type envelope struct {
	Pub    string
	PubSeq uint64
	chat.Event
}

// markEnvelope is how a watermark travels.
type markEnvelope struct {
	Pub    string
	PubSeq uint64
	Watermark
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
	if opts.PublisherIdle <= 0 {
		opts.PublisherIdle = defaultPublisherIdle
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 1 << 16
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	return &Bus{nc: nc, prefix: opts.Prefix, queueSize: opts.QueueSize, log: opts.Logger, onLoss: opts.OnLoss, onMark: opts.OnWatermark,
		publisherIdle: opts.PublisherIdle,
		controlLost:   opts.Prefix + ".control.lost", watermarks: opts.Prefix + ".control.watermark", id: hex.EncodeToString(id[:])}, nil
}

// Stats returns the bus's counters.
func (b *Bus) Stats() Stats {
	return Stats{
		Published:     b.published.Load(),
		Delivered:     b.delivered.Load(),
		Dropped:       b.dropped.Load(),
		Reconnects:    b.reconnects.Load(),
		Gaps:          b.gaps.Load(),
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
// the connection is closed or its reconnect buffer is full. An event that
// could not be handed over still uses up its number, so that subscribers
// see the gap when this Bus's next message arrives.
func (b *Bus) Publish(ctx context.Context, e chat.Event) error {
	// Every way out without sending uses a number up too: the caller
	// committed what e says, and subscribers must see that they missed it.
	if err := ctx.Err(); err != nil {
		b.skip()
		return fmt.Errorf("natsbus.Publish: %w", err)
	}
	subj, err := b.subject(e)
	if err != nil {
		b.skip()
		return err
	}
	data, err := json.Marshal(e)
	if err != nil {
		b.skip()
		return fmt.Errorf("natsbus.Publish: encode %s event: %w", e.Kind, err)
	}
	if err := b.send(subj, data, true); err != nil {
		return chat.Unavailable("natsbus.Publish", err)
	}
	b.published.Add(1)
	return nil
}

// PublishWatermark publishes w on <prefix>.control.watermark, after every
// event Publish has handed over before (same connection, same order). It
// returns an unavailable error, and publishes nothing, while the
// connection is not up: a watermark kept in nats.go's reconnect buffer
// would follow events that were lost with the broken connection (their
// receivers then see the gap in this Bus's sequence first).
func (b *Bus) PublishWatermark(ctx context.Context, w Watermark) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("natsbus.PublishWatermark: %w", err)
	}
	if !b.nc.IsConnected() {
		return chat.Unavailable("natsbus.PublishWatermark", errors.New("not connected to NATS"))
	}
	data, err := json.Marshal(w)
	if err != nil {
		return fmt.Errorf("natsbus.PublishWatermark: %w", err)
	}
	if err := b.send(b.watermarks, data, false); err != nil {
		return chat.Unavailable("natsbus.PublishWatermark", err)
	}
	return nil
}

// ReportLoss implements chat.LossReporter: subscribers see a gap in this
// Bus's numbers at its next message, as for an event lost on the way.
func (b *Bus) ReportLoss() { b.skip() }

// skip uses up this Bus's next sequence number without sending anything:
// subscribers see a gap at its next message and treat it as a loss.
func (b *Bus) skip() {
	b.pubMu.Lock()
	defer b.pubMu.Unlock()
	b.pubSeq++
}

// send numbers data (a JSON object) with this Bus's next sequence number
// and hands it to the connection. A failure uses the number up when
// consume is set (a lost event must show as a gap), and gives it back
// otherwise.
func (b *Bus) send(subj string, data []byte, consume bool) error {
	b.pubMu.Lock()
	defer b.pubMu.Unlock()
	seq := b.pubSeq + 1
	buf := make([]byte, 0, len(data)+len(b.id)+32)
	buf = append(buf, `{"Pub":"`...)
	buf = append(buf, b.id...)
	buf = append(buf, `","PubSeq":`...)
	buf = strconv.AppendUint(buf, seq, 10)
	buf = append(buf, ',')
	buf = append(buf, data[1:]...) // data is an object with at least one field
	err := b.nc.Publish(subj, buf)
	if err == nil || consume {
		b.pubSeq = seq
	}
	return err
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

	// Owned by run's goroutine:
	dropped int                   // NATS's drop count for sub, as last reported
	pubs    map[string]*publisher // the sequence of each publisher heard from
}

// publisher is where one publisher's sequence stands at a subscription.
type publisher struct {
	seq  uint64
	seen time.Time
}

// defaultPublisherIdle is how long a publisher that sent nothing is
// remembered (Options.PublisherIdle); nodes send watermarks several times
// a second, so one silent that long is gone.
const defaultPublisherIdle = 10 * time.Minute

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
	s.pubs = make(map[string]*publisher)
	var (
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
			switch m.Subject {
			case s.b.controlLost:
				from := string(m.Data)
				if _, numbered := s.pubs[from]; from == s.b.id || numbered {
					// Not our own notice, and not from a publisher whose
					// lost messages show as gaps in its sequence (its late
					// ones are no loss: they arrive in order).
					continue
				}
				s.b.log.Warn("natsbus: another node's events may have been lost or delayed; clients must sync", "from", from)
				s.lost(0)
			case s.b.watermarks:
				var w markEnvelope
				if err := json.Unmarshal(m.Data, &w); err != nil {
					decodeErrors++
					lastDecodeErr = fmt.Errorf("subject %s: %w", m.Subject, err)
					continue
				}
				s.sequence(w.Pub, w.PubSeq)
				if s.b.onMark != nil {
					s.b.onMark(w.Watermark)
				}
			default:
				var e envelope
				if err := json.Unmarshal(m.Data, &e); err != nil {
					decodeErrors++
					lastDecodeErr = fmt.Errorf("subject %s: %w", m.Subject, err)
					continue
				}
				s.sequence(e.Pub, e.PubSeq)
				handle(e.Event)
				s.b.delivered.Add(1)
			}
		case <-tick.C:
			if decodeErrors > 0 {
				s.b.decodeErrors.Add(decodeErrors)
				s.b.log.Warn("natsbus: ignored payloads that are not events", "count", decodeErrors, "err", lastDecodeErr)
				decodeErrors = 0
			}
			s.checkDropped()
			// nats.go counts every connection it opens while reconnecting,
			// also those that fail before the handshake ends: a reconnect
			// counts once the connection is up again, and only once.
			if r := s.b.nc.Stats().Reconnects; r > reconnects && s.b.nc.IsConnected() {
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
			for id, p := range s.pubs {
				if time.Since(p.seen) > s.b.publisherIdle {
					delete(s.pubs, id)
				}
			}
		}
	}
}

// sequence checks the number of a message from publisher pub (zero for a
// publisher that does not number its messages): when numbers were
// skipped, messages were lost between pub and here, and the loss is
// reported before the message is handled.
func (s *subscription) sequence(pub string, seq uint64) {
	if pub == "" || seq == 0 {
		return
	}
	p := s.pubs[pub]
	if p == nil {
		s.pubs[pub] = &publisher{seq: seq, seen: time.Now()}
		return
	}
	p.seen = time.Now()
	if seq <= p.seq {
		return // NATS does not repeat or reorder one connection's messages
	}
	skipped := seq - p.seq - 1
	p.seq = seq
	if skipped == 0 {
		return
	}
	s.b.gaps.Add(1)
	s.b.log.Warn("natsbus: a node's messages were lost on the way; clients must sync", "publisher", pub, "missing", skipped)
	// Events NATS dropped here (a full queue) show as gaps too: report
	// them now, with their count, rather than at the next check.
	if !s.checkDropped() {
		s.lost(0)
	}
}

// checkDropped reports the events NATS dropped for the subscription since
// the last report, if any, and says whether there were.
func (s *subscription) checkDropped() bool {
	d, err := s.sub.Dropped()
	if err != nil || d <= s.dropped {
		return false
	}
	n := d - s.dropped
	s.dropped = d
	s.b.dropped.Add(int64(n))
	s.b.log.Warn("natsbus: subscriber too slow, NATS dropped events; clients must sync", "dropped", n)
	s.lost(n)
	return true
}

func (s *subscription) lost(n int) {
	if s.b.onLoss != nil {
		s.b.onLoss(n)
	}
}
