package core

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/natter-chat/natter/internal/auth"
	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/jobs"
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
	Search  SearchOptions // message search and its indexer (used when Deps.Search is set)
	// Attachments configures uploads (used when Deps.Attachments is set).
	Attachments AttachmentOptions
	Push        PushOptions // push notification endpoints (used when Deps.Push is set)
	// NoBackground (the api role of a cluster node) makes Run skip the
	// search indexer and the attachment sweep; jobs are still enqueued,
	// for worker nodes to do.
	NoBackground bool
	// ExportMaxBytes bounds the files (attachments and avatar) one data
	// export carries; a bigger export fails with too_large before it
	// starts. Zero means 1 GiB.
	ExportMaxBytes int64
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
	if o.ExportMaxBytes <= 0 {
		o.ExportMaxBytes = 1 << 30
	}
	o.Search.fill()
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
	search    chat.SearchIndex // nil: search is off
	attach    *attachments     // nil: attachments are off
	people    chat.PeopleStore
	directs   *directCache
	exports   chan struct{} // one token per running data export
	// pushes is nil when push endpoints answer push_not_configured.
	pushes chat.PushStore
	// avatars and userFiles are nil when avatars, and the files of the
	// data export and of account deletion, are off (see avatars.go).
	avatars   chat.AvatarStore
	userFiles chat.UserAttachments
	jobs      jobs.Runner // background work (see jobs.go)
	// ownJobs says that jobs is the Service's own in-process runner, which Run runs.
	ownJobs bool
	// settingLocks order one user's settings changes (see changeSetting),
	// striped by user id.
	settingLocks [64]sync.Mutex
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
	// Search is the message search index; nil turns search off. Run
	// keeps it current with an Indexer.
	Search chat.SearchIndex
	// People keeps profiles, contacts, blocks and account deletion; nil
	// means Store, which must then implement chat.PeopleStore.
	People chat.PeopleStore
	// Push keeps push subscriptions and notification settings; nil turns
	// the push endpoints off.
	Push chat.PushStore
	// Attachments keeps attachment metadata and Blobs their bytes; both
	// set turns attachments on. Run then also runs the thumbnail workers
	// and the sweep.
	Attachments chat.AttachmentStore
	Blobs       chat.BlobStore
	// Cold is where old content moves (Options.Attachments.ColdAfter)
	// and Tiers records where each attachment's content is; both set
	// turns the cold tier on. Nil means all content stays in Blobs.
	Cold  chat.BlobStore
	Tiers chat.AttachmentTiers
	// Jobs takes background work (thumbnails); New registers the handlers
	// and the caller runs it (on worker nodes). Nil means an in-process
	// runner that Run runs.
	Jobs jobs.Runner
	// Avatars keeps avatars (their bytes go in Blobs) and UserFiles finds
	// a user's uploads for the data export and account deletion; both
	// need attachments on. Nil turns avatars, or those files, off.
	Avatars   chat.AvatarStore
	UserFiles chat.UserAttachments
}

// New returns a Service. Call Run before sending messages.
func New(d Deps, opts Options) *Service {
	opts.fill()
	s := &Service{
		store: d.Store, bus: d.Bus, ids: d.IDs, hasher: d.Hasher, tokens: d.Tokens, throttle: d.Throttle,
		opts: opts, log: opts.Logger,
	}
	s.appender = newAppender(d.Store, s.publish, opts)
	s.appender.uncertain = s.reportUncertain
	s.members = newMemberCache(d.Store, opts.Now)
	s.typing = newTypingThrottle(opts.TypingInterval)
	s.presence = d.Presence
	s.sendLimit = d.SendLimit
	s.search = d.Search
	s.attach = newAttachments(d.Attachments, d.Blobs, opts.Attachments, opts.Logger)
	if s.attach != nil {
		s.attach.cold = newColdTier(d.Cold, d.Tiers, opts.Attachments.ColdAfter)
	}
	if s.attach != nil {
		s.appender.attachments = s.fillAttachments
	}
	s.people = d.People
	if s.people == nil {
		s.people, _ = d.Store.(chat.PeopleStore)
	}
	s.directs = newDirectCache(s.people, opts.Now)
	s.exports = make(chan struct{}, MaxConcurrentExports)
	s.pushes = d.Push
	if s.attach != nil {
		s.avatars, s.userFiles = d.Avatars, d.UserFiles
	}
	if s.sendLimit == nil {
		s.sendLimit = unlimited{}
	}
	s.setupJobs(d.Jobs)
	return s
}

// Run commits queued sends until ctx is done, then commits what is still
// queued (so that in-flight sends finish) and returns. It also listens on
// the bus for removals made on other nodes, to forget cached memberships,
// and, given a search index (Deps.Search), runs its Indexer.
func (s *Service) Run(ctx context.Context) error {
	if !s.opts.ObserveByCaller {
		cancel, err := s.bus.Subscribe(ctx, s.Observe)
		if err != nil {
			return err
		}
		defer cancel()
	}
	if s.ownJobs {
		stop := s.runOwnJobs(ctx)
		defer stop()
	}
	if s.search != nil && !s.opts.NoBackground {
		stop := s.runIndexer(ctx)
		defer stop()
	}
	if s.attach != nil && !s.opts.NoBackground {
		stop := s.runAttachmentWork(ctx)
		defer stop()
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
	s.observePeople(e)
}

// Options returns the effective options (defaults filled in).
func (s *Service) Options() Options { return s.opts }

// Ping reports whether the store is usable.
func (s *Service) Ping(ctx context.Context) error { return s.store.Ping(ctx) }

// publish announces a stored fact on the bus. Bus delivery is best effort:
// a failure is logged and clients catch up from the store.
func (s *Service) publish(ctx context.Context, e chat.Event) {
	if ctx.Err() != nil {
		// The change is stored but its caller has gone (a client that
		// logged out and hung up, say): announce it all the same. A bus
		// gives up an event under an ended context, and every cluster
		// node counts an event given up as lost and tells all its
		// clients to reconnect.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
		defer cancel()
	}
	if err := s.bus.Publish(ctx, e); err != nil {
		s.log.Warn("bus publish failed", "conv", e.Conv, "kind", e.Kind, "err", err)
	}
}

// publishTimeout bounds a publish whose caller has gone (see publish).
const publishTimeout = 30 * time.Second

// write runs fn on the appender goroutine, in order with sends (see
// appender), and returns its error.
func (s *Service) write(ctx context.Context, fn func(ctx context.Context) error) error {
	var err error
	if qerr := s.appender.do(ctx, func(ctx context.Context) {
		if err = fn(ctx); errors.Is(err, chat.ErrCommitUncertain) {
			s.reportUncertain()
		}
	}); qerr != nil {
		return qerr
	}
	return err
}

// reportUncertain runs on the appender goroutine after a write whose
// commit has an unknown outcome: the change may be stored although its
// event was never published, and a retry of it finds it stored and
// publishes nothing. A bus that can (chat.LossReporter: natsbus) makes its
// subscribers treat this as a lost event before anything that follows,
// so that clients catch up from cursors that have not passed it.
func (s *Service) reportUncertain() {
	s.log.Warn("a commit's outcome is unknown (the store connection failed during it); clients will catch up from the store")
	if r, ok := s.bus.(chat.LossReporter); ok {
		r.ReportLoss()
	}
}

// Settled reads the store's newest change position on the appender
// goroutine and passes it to fn there. Every write of this node runs on
// that goroutine and publishes its events before the next one starts, so
// when fn runs, every change this node committed at or below the position
// has had its events handed to the bus, and none that follows has
// started: what fn publishes on the bus comes after them (a cluster node
// publishes its watermark so). fn must not block. Settled returns
// unavailable when the node is stopping or ctx ends before its turn, the
// store's error, or fn's.
func (s *Service) Settled(ctx context.Context, fn func(pos int64) error) error {
	return s.write(ctx, func(wctx context.Context) error {
		rctx, cancel := context.WithTimeout(wctx, 5*time.Second)
		defer cancel()
		pos, err := s.store.Position(rctx)
		if err != nil {
			return err
		}
		return fn(pos)
	})
}

// Principal is an authenticated caller: a user on one session (device).
type Principal struct {
	User    chat.UserID
	Session chat.SessionID
	Conn    int64 // the WebSocket connection the request came on; 0 for REST
}
