package core

import (
	"context"
	"log/slog"
	"time"

	"github.com/natter-chat/natter/internal/auth"
	"github.com/natter-chat/natter/internal/chat"
)

// Options configures a Service. Zero values are documented per field.
type Options struct {
	MaxTextBytes    int           // zero means 16 KiB
	MaxClientIDLen  int           // zero means 128 bytes
	MaxGroupMembers int           // zero means 10,000
	MaxTitleLen     int           // zero means 200 bytes
	RefreshTTL      time.Duration // zero means 30 days
	MaxBatch        int           // most sends per commit; zero means 512
	QueueSize       int           // sends waiting for the appender; zero means 8192
	TypingInterval  time.Duration // a user's "typing" in a conversation is forwarded at most this often; zero means 3s
	TypingExpiry    time.Duration // recipients forget a "typing" after this without a repeat; zero means 6s
	MaxReplay       int           // the most changes a sync replays before answering resync_required; zero means 10,000
	// ObserveByCaller says that the caller hands every bus event to
	// Observe from its own subscription, so Run does not subscribe (a node
	// then decodes each event once, not once per subscription).
	ObserveByCaller bool
	Now             func() time.Time
	Logger          *slog.Logger // nil means discard
	// Observe, if set, is told the outcome of every commit batch (for metrics).
	Observe func(batchSize int, took time.Duration, err error)
}

func (o *Options) fill() {
	if o.MaxTextBytes == 0 {
		o.MaxTextBytes = 16 << 10
	}
	if o.MaxClientIDLen == 0 {
		o.MaxClientIDLen = 128
	}
	if o.MaxGroupMembers == 0 {
		o.MaxGroupMembers = 10000
	}
	if o.MaxTitleLen == 0 {
		o.MaxTitleLen = 200
	}
	if o.RefreshTTL == 0 {
		o.RefreshTTL = 30 * 24 * time.Hour
	}
	if o.MaxBatch == 0 {
		o.MaxBatch = 512
	}
	if o.QueueSize == 0 {
		o.QueueSize = 8192
	}
	if o.TypingInterval == 0 {
		o.TypingInterval = 3 * time.Second
	}
	if o.TypingExpiry == 0 {
		o.TypingExpiry = 6 * time.Second
	}
	if o.MaxReplay == 0 {
		o.MaxReplay = 10_000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Service runs the use-cases. Create it with New, start its appender with
// Run, and stop it by cancelling Run's context.
type Service struct {
	store     chat.Store
	bus       chat.Bus
	ids       chat.IDGenerator
	hasher    *auth.Hasher
	tokens    *auth.Tokens
	throttle  *auth.Throttle
	opts      Options
	log       *slog.Logger
	appender  *appender
	members   *memberCache
	typing    *typingThrottle
	presence  chat.Presence
	sendLimit Limiter
}

// Deps are the parts a Service is built from.
type Deps struct {
	Store    chat.Store
	Bus      chat.Bus
	IDs      chat.IDGenerator
	Hasher   *auth.Hasher
	Tokens   *auth.Tokens
	Throttle *auth.Throttle
	Presence chat.Presence
	// SendLimit limits sends per user (key: the user id); nil means none.
	SendLimit Limiter
}

// New returns a Service. Call Run before sending messages.
func New(d Deps, opts Options) *Service {
	opts.fill()
	s := &Service{
		store: d.Store, bus: d.Bus, ids: d.IDs, hasher: d.Hasher, tokens: d.Tokens, throttle: d.Throttle,
		opts: opts, log: opts.Logger,
	}
	s.appender = newAppender(d.Store, s.publish, opts)
	s.members = newMemberCache(d.Store, opts.Now)
	s.typing = newTypingThrottle(opts.TypingInterval)
	s.presence = d.Presence
	s.sendLimit = d.SendLimit
	if s.sendLimit == nil {
		s.sendLimit = unlimited{}
	}
	return s
}

// Run commits queued sends until ctx is done, then commits what is still
// queued (so that in-flight sends finish) and returns. It also listens on
// the bus for removals made on other nodes, to forget cached memberships.
func (s *Service) Run(ctx context.Context) error {
	if !s.opts.ObserveByCaller {
		cancel, err := s.bus.Subscribe(ctx, s.Observe)
		if err != nil {
			return err
		}
		defer cancel()
	}
	s.appender.run(ctx)
	return nil
}

// Observe takes note of an event from the bus: a removal made on any node
// drops the cached memberships it ends. Run calls it unless
// Options.ObserveByCaller.
func (s *Service) Observe(e chat.Event) {
	if e.Kind == chat.EventMemberRemoved {
		s.members.forget(e.Conv, e.Users)
	}
}

// Options returns the effective options (defaults filled in).
func (s *Service) Options() Options { return s.opts }

// Ping reports whether the store is usable.
func (s *Service) Ping(ctx context.Context) error { return s.store.Ping(ctx) }

// publish announces a stored fact on the bus. Bus delivery is best effort:
// a failure is logged and clients catch up from the store.
func (s *Service) publish(ctx context.Context, e chat.Event) {
	if err := s.bus.Publish(ctx, e); err != nil {
		s.log.Warn("bus publish failed", "conv", e.Conv, "kind", e.Kind, "err", err)
	}
}

// write runs fn on the appender goroutine, in order with sends (see
// appender), and returns its error.
func (s *Service) write(ctx context.Context, fn func(ctx context.Context) error) error {
	var err error
	if qerr := s.appender.do(ctx, func(ctx context.Context) { err = fn(ctx) }); qerr != nil {
		return qerr
	}
	return err
}

// Principal is an authenticated caller: a user on one session (device).
type Principal struct {
	User    chat.UserID
	Session chat.SessionID
	Conn    int64 // the WebSocket connection the request came on; 0 for REST
}
