// Package app is the composition root: it builds a Natter node from a
// Config, wiring store, bus, auth, core, hub and transports, and runs it
// until its context ends. It is the only package that knows which
// backends exist (embedded mode today: SQLite and the in-process bus).
//
// Invariants: shutdown is ordered so that nothing acknowledged is lost:
// /readyz turns 503 first, then the node stops accepting connections,
// tells WebSocket clients to reconnect with jitter, lets in-flight REST
// requests finish, commits every queued send, and only then closes the
// store.
package app

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/natter-chat/natter/internal/auth"
	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/core"
	"github.com/natter-chat/natter/internal/httpapi"
	"github.com/natter-chat/natter/internal/hub"
	"github.com/natter-chat/natter/internal/jobs"
	"github.com/natter-chat/natter/internal/membus"
	"github.com/natter-chat/natter/internal/metrics"
	"github.com/natter-chat/natter/internal/postgres"
	"github.com/natter-chat/natter/internal/push"
	"github.com/natter-chat/natter/internal/ratelimit"
	"github.com/natter-chat/natter/internal/snowflake"
	"github.com/natter-chat/natter/internal/sqlite"
	"github.com/natter-chat/natter/internal/wsapi"
	"github.com/natter-chat/natter/web"
)

// Config is everything a node needs. Zero values are documented per field;
// cmd/natter fills it from flags, NATTER_* variables and a config file.
type Config struct {
	Addr    string // listen address; empty means 127.0.0.1:8080 ("127.0.0.1:0" picks a free port)
	DataDir string // where the database and keys live; empty means ./natter-data
	// Store is empty (or "sqlite") for SQLite under DataDir, or a
	// postgres:// URL for PostgreSQL (cluster mode; the signing key then
	// lives in the database too).
	Store       string
	StoreSchema string // PostgreSQL schema for Natter's tables; empty means public
	// Bus is empty for the in-process bus, or NATS URLs (comma-separated)
	// for cluster mode: events between nodes on core NATS, presence and
	// node id leases in JetStream key-value buckets.
	Bus string
	// Cluster names the cluster on NATS: the subject prefix and the first
	// part of bucket names, so that clusters can share a NATS server.
	// Empty means "natter".
	Cluster string
	// NodeID (0..1023) is part of every id this node makes. Negative means
	// automatic: 0 in embedded mode, a free id leased on NATS in cluster
	// mode (where an explicit id is leased too, and refused if held).
	NodeID       int64
	NodeLeaseTTL time.Duration // cluster mode: a node id lease not refreshed this long expires (a node that cannot refresh stops a sixth of it earlier); zero means 2m
	NATSReplicas int           // cluster mode: replicas of the JetStream buckets (3 on a 3-server NATS cluster); zero means 1
	// CursorLag is deprecated and ignored: the sync cursor that live
	// frames carry in cluster mode follows the nodes' watermarks (see
	// cursor.go), whatever time events take between nodes. It is kept so
	// that existing configurations still load.
	CursorLag       time.Duration
	PresenceTTL     time.Duration  // cluster mode: a dead node's users go offline this long (plus PresenceGrace) after it died; zero means 15s
	MaxTextBytes    int            // longest message text; zero means 16 KiB
	AllowedOrigins  []string       // extra browser origins allowed on /v1/ws
	TrustedProxies  []netip.Prefix // load balancers whose X-Forwarded-For names the client (for the login throttle)
	ShutdownTimeout time.Duration  // longest graceful shutdown; zero means 25s
	DrainJitter     time.Duration  // clients reconnect within this; zero means 5s
	DebugAddr       string         // if set, serves /debug/pprof and /metrics there
	SendRate        float64        // sends per second per user (burst: twice as many); zero means 200, negative means unlimited
	RESTRate        float64        // REST requests per second per user (burst: twice as many); zero means 100, negative means unlimited
	WS              wsapi.Options  // WebSocket tuning; zero values as documented there
	Hasher          auth.HasherOptions
	PresenceGrace   time.Duration    // a user goes offline this long after their last connection closed; zero means 5s
	MaxReplay       int              // most changes a sync replays before answering resync_required; zero means 10,000
	SearchInterval  time.Duration    // how long the search indexer waits, once caught up, before looking for changed messages again; zero means 1s
	Push            PushConfig       // push notifications (see push.go)
	Attachments     AttachmentConfig // file uploads and downloads (see attachments.go)
	ExportMaxBytes  int64            // most bytes of files (attachments, avatar) one data export carries; zero means 1 GiB
	Logger          *slog.Logger     // nil means discard

	// Role is what this node does (see jobs.go): empty or "all" for
	// everything, "api" to serve clients without background work,
	// "worker" for background work only. api and worker need cluster mode.
	Role        string
	JobsAckWait time.Duration // cluster mode: a job whose node stops answering is redelivered after this; zero means 30s
	// JobGate is for tests only; nil in production. It runs before every
	// job this node handles, with the job's context and payload; an error
	// fails the attempt without running the job. A gate that blocks until
	// ctx ends holds the job, as a node that dies mid-job would.
	JobGate func(ctx context.Context, kind string, payload []byte) error

	// busTest is for tests only; nil in production. In embedded mode it
	// sets the in-process bus's queue size per subscription and a gate
	// every event passes before the node's hub gets it (a gate that blocks
	// stalls the subscription, as a stuck hub would).
	busTest *busTest
	// storeTest is for tests only; nil in production. It wraps the store
	// as the service sees it (e.g. to hold or fail the reads of a replay).
	storeTest func(chat.Store) chat.Store
}

// busTest is Config.busTest.
type busTest struct {
	queueSize int              // zero means membus's default
	gate      func(chat.Event) // nil means none
}

// App is a running node's parts.
type App struct {
	cfg      Config
	log      *slog.Logger
	store    nodeStore
	svc      *core.Service
	hub      *hub.Hub
	ws       *wsapi.Handler
	handler  http.Handler
	listener net.Listener
	draining atomic.Bool
	// subscribe connects the hub to the bus; debug serves DebugAddr.
	subscribe func(context.Context) (func(), error)
	debug     http.Handler
	presence  nodePresence
	cluster   *clusterParts // nil in embedded mode
	fatal     chan error    // a reason the node must stop (its node id lease was lost)
	notifier  *push.Dispatcher
	blobs     []io.Closer // attachment blob stores (hot, cold); none when attachments are off

	jobs jobs.Runner // background work; run unless the role is api
}

// nodeStore is what the app needs of a store besides chat.Store.
type nodeStore interface {
	chat.Store
	Ping(ctx context.Context) error
	Close() error
}

// nodePresence is what the app needs of a presence backend.
type nodePresence interface {
	chat.Presence
	Close()
}

// New builds a node: it creates the data directory, opens (and migrates)
// the store and loads or creates the token signing key.
func New(ctx context.Context, cfg Config) (*App, error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:8080"
	}
	if cfg.DataDir == "" {
		cfg.DataDir = "natter-data"
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 25 * time.Second
	}
	if cfg.DrainJitter == 0 {
		cfg.DrainJitter = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := checkRole(&cfg); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	a := &App{cfg: cfg, log: cfg.Logger, fatal: make(chan error, 1)}
	ok := false
	defer func() {
		if !ok {
			a.closeBackends()
		}
	}()
	if cfg.Bus != "" && (cfg.Store == "" || cfg.Store == "sqlite") {
		return nil, fmt.Errorf("cluster mode (--bus) needs a shared store: set --store to a postgres:// URL")
	}
	if err := a.openStore(ctx); err != nil {
		return nil, err
	}
	var bus chat.Bus
	var busDropped func() float64
	var hold *dropHold // the embedded node's cursor hold after a bus drop (see drophold.go)
	var gate func(chat.Event)
	if cfg.Bus == "" {
		hold = newDropHold()
		opts := membus.BusOptions{OnDrop: hold.drop}
		if t := cfg.busTest; t != nil {
			opts.QueueSize, gate = t.queueSize, t.gate
		}
		mb := membus.NewBus(opts)
		bus, busDropped = mb, func() float64 { return float64(mb.Dropped()) }
		a.presence = membus.NewPresence(membus.PresenceOptions{Grace: cfg.PresenceGrace})
		if cfg.NodeID < 0 {
			cfg.NodeID = 0
		}
	} else {
		c, err := a.joinCluster(ctx)
		if err != nil {
			return nil, err
		}
		a.cluster = c
		bus, busDropped = c.bus, func() float64 { return float64(c.bus.Stats().Dropped) }
		a.presence = c.presence
		cfg.NodeID = c.lease.ID()
	}
	a.cfg.NodeID = cfg.NodeID
	ids, err := snowflake.New(cfg.NodeID, nil)
	if err != nil {
		return nil, fmt.Errorf("node id: %w", err)
	}
	key, err := a.signingKey(ctx)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	store, presence := a.store, a.presence
	svcStore := chat.Store(store)
	if cfg.storeTest != nil {
		svcStore = cfg.storeTest(store)
	}
	reg := prometheus.NewRegistry()
	met := metrics.New(reg, busDropped)
	if a.jobs, err = a.setupJobs(ctx, reg); err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	a.jobs = gateJobs(a.jobs, cfg.JobGate)
	pushStore, pushOpts, err := a.setupPush(ctx, &bus, reg)
	if err != nil {
		return nil, fmt.Errorf("push notifications: %w", err)
	}
	attach, err := a.setupAttachments(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("attachments: %w", err)
	}
	a.svc = core.New(core.Deps{
		Attachments: attach.store, Blobs: attach.blobs, Cold: attach.cold, Tiers: attach.tiers,
		Store: svcStore, Bus: bus, IDs: ids, Presence: presence, SendLimit: perUser(cfg.SendRate, 200),
		Hasher: auth.NewHasher(cfg.Hasher), Tokens: auth.NewTokens(key, auth.TokenOptions{}), Throttle: auth.NewThrottle(auth.ThrottleOptions{}),
		Search: searchIndex(store),
		People: store.(chat.PeopleStore), // both stores implement it
		Push:   pushStore,
		Jobs:   a.jobs,
		// Both stores implement these too.
		Avatars: store.(chat.AvatarStore), UserFiles: store.(chat.UserAttachments),
	}, core.Options{
		ExportMaxBytes: cfg.ExportMaxBytes,
		NoBackground:   cfg.Role == RoleAPI,
		MaxTextBytes:   cfg.MaxTextBytes, Logger: cfg.Logger, MaxReplay: cfg.MaxReplay, ObserveByCaller: true,
		Search:      core.SearchOptions{Interval: cfg.SearchInterval},
		Push:        pushOpts,
		Attachments: attach.opts,
		Observe: func(n int, took time.Duration, err error) {
			met.CommitBatch.Observe(float64(n))
			met.CommitLatency.Observe(took.Seconds())
		},
	})
	hubOpts := hub.Options{Logger: cfg.Logger, TypingExpiry: a.svc.Options().TypingExpiry}
	if c := a.cluster; c != nil {
		// Never past a message the sequencer still waits for.
		hubOpts.Cursor = func(chat.Event) int64 { return min(c.clock.cursor(), c.seq.Floor()) }
	} else {
		// Never past an event the in-process bus dropped, until every
		// client has been told to reconnect.
		hubOpts.Cursor = hold.cursor
	}
	a.hub = hub.New(a.svc.ConversationIDs, hubOpts)
	// Bodies and frames must fit the longest text even when JSON escapes
	// it (up to 6 bytes per byte of text, but rarely more than a few).
	envelope := max(64<<10, 4*a.svc.Options().MaxTextBytes)
	wsOpts := cfg.WS
	wsOpts.AllowedOrigins = append(wsOpts.AllowedOrigins, cfg.AllowedOrigins...)
	wsOpts.Logger = cfg.Logger
	if wsOpts.MaxFrameBytes == 0 {
		wsOpts.MaxFrameBytes = envelope
	}
	a.ws = wsapi.New(a.svc, a.hub, met, wsOpts)
	api := httpapi.New(a.svc, met, httpapi.Options{Logger: cfg.Logger, Ready: a.ready, MaxBodyBytes: int64(envelope), Limit: perUser(cfg.RESTRate, 100), TrustedProxies: cfg.TrustedProxies})

	mux := http.NewServeMux()
	api.Routes(mux)
	mux.Handle("GET /v1/ws", a.ws)
	mux.HandleFunc("GET /v1/events", a.ws.ServeEvents)
	mux.HandleFunc("POST /v1/frames", a.ws.ServeFrames)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	// The web client: "/" (not "GET /", which conflicts with "/v1/") ranks below every API route.
	mux.Handle("/", web.Handler())
	a.handler = mux
	if cfg.Role == RoleWorker {
		a.handler = a.workerHandler(reg)
	}
	// One bus subscription per node: the core forgets memberships that
	// a removal ends before the hub hears of it.
	deliver := a.hub.Handle
	if a.cluster != nil {
		deliver = a.cluster.wrapHandler(a, deliver)
	}
	handle := func(e chat.Event) {
		if gate != nil {
			gate(e)
		}
		a.svc.Observe(e)
		deliver(e)
	}
	a.subscribe = func(ctx context.Context) (func(), error) {
		unsubscribe, err := bus.Subscribe(ctx, handle)
		if err != nil {
			return nil, err
		}
		unwatch, err := a.svc.WatchPresence(ctx, a.hub.HandlePresence)
		if err != nil {
			unsubscribe()
			return nil, err
		}
		stopSeq := func() {}
		if a.cluster == nil {
			// The in-process bus drops an event only when a subscriber's
			// queue stays full; the hold keeps frames' cursors below it
			// until the node's clients were told to reconnect and catch up.
			watchCtx, cancel := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() { defer close(done); a.watchDrops(watchCtx, hold) }()
			stopSeq = func() { cancel(); <-done }
		}
		if a.cluster != nil {
			seqCtx, cancel := context.WithCancel(ctx)
			var bg sync.WaitGroup
			bg.Go(func() { a.cluster.seq.Run(seqCtx) })
			bg.Go(func() { a.cluster.clock.run(seqCtx) })
			stopSeq = func() { cancel(); bg.Wait() }
		}
		return func() { unwatch(); unsubscribe(); stopSeq() }, nil
	}
	a.debug = debugMux(reg)
	ok = true
	return a, nil
}

// openStore opens (and migrates) the store Config.Store names.
func (a *App) openStore(ctx context.Context) error {
	switch st := a.cfg.Store; {
	case st == "" || st == "sqlite":
		s, err := sqlite.Open(ctx, filepath.Join(a.cfg.DataDir, "natter.db"), sqlite.Options{})
		if err != nil {
			return fmt.Errorf("open store: %w", err)
		}
		a.store = s
	case strings.HasPrefix(st, "postgres://") || strings.HasPrefix(st, "postgresql://"):
		s, err := postgres.Open(ctx, st, postgres.Options{Schema: a.cfg.StoreSchema})
		if err != nil {
			return fmt.Errorf("open PostgreSQL store: %w", err)
		}
		a.store = s
	default:
		return fmt.Errorf("store %q: want empty or sqlite (embedded) or a postgres:// URL", st)
	}
	return nil
}

// signingKey loads the token signing key: from the data directory, or
// from PostgreSQL when that is the store, so that every node of a
// cluster signs and verifies with the same key.
func (a *App) signingKey(ctx context.Context) (ed25519.PrivateKey, error) {
	pg, ok := a.store.(*postgres.Store)
	if !ok {
		return auth.LoadOrCreateKey(a.cfg.DataDir)
	}
	_, candidate, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	key, err := pg.SigningKey(ctx, candidate)
	if err != nil {
		return nil, err
	}
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("the stored signing key is %d bytes, not an Ed25519 private key", len(key))
	}
	// Rebuild it from its seed, and refuse a key whose public half does
	// not match (a corrupted or tampered row).
	rebuilt := ed25519.NewKeyFromSeed(key[:ed25519.SeedSize])
	if !rebuilt.Equal(ed25519.PrivateKey(key)) {
		return nil, fmt.Errorf("the stored signing key is inconsistent (its public half does not match its seed)")
	}
	return rebuilt, nil
}

// closeBackends closes what New opened, in reverse order; for a New that
// failed half-way and for the end of Run.
func (a *App) closeBackends() {
	if a.presence != nil {
		a.presence.Close()
	}
	if a.cluster != nil {
		a.cluster.close()
	}
	if a.store != nil {
		_ = a.store.Close()
	}
	for _, b := range a.blobs {
		_ = b.Close()
	}
}

// watchDrops tells every client to reconnect as soon as the in-process bus
// reports a drop to hold, and then lifts the hold (see dropHold), until
// ctx is done.
func (a *App) watchDrops(ctx context.Context, hold *dropHold) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hold.wake:
		}
		seen := hold.dropped()
		a.log.Warn("events were dropped by the bus or lost (a commit with an unknown outcome); clients will reconnect and catch up", "losses_total", seen)
		a.ws.Reconnect(a.cfg.DrainJitter)
		// A drop since seen keeps the hold; its wake-up is pending and
		// comes round again.
		hold.thaw(seen)
	}
}

// perUser returns a per-key token bucket of rate per second (def when
// zero; unlimited when negative) with a burst of twice the rate.
func perUser(rate, def float64) *ratelimit.Limiter {
	if rate == 0 {
		rate = def
	}
	return ratelimit.New(ratelimit.Options{Rate: rate, Burst: max(1, int(2*rate))})
}

func debugMux(reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux
}

func (a *App) ready(ctx context.Context) error {
	if a.draining.Load() {
		return chat.Errorf(chat.CodeUnavailable, "shutting down")
	}
	if a.cluster != nil {
		if err := a.cluster.ready(); err != nil {
			return err
		}
	}
	return a.store.Ping(ctx)
}

// Listen binds the listen address; Addr is known afterwards. Run calls
// it if it was not called.
func (a *App) Listen() error {
	if a.listener != nil {
		return nil
	}
	l, err := net.Listen("tcp", a.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.cfg.Addr, err)
	}
	a.listener = l
	return nil
}

// Addr returns the bound address (after Listen).
func (a *App) Addr() string { return a.listener.Addr().String() }

// Run serves until ctx is done, then shuts down gracefully (see the
// package comment) and closes the store. It returns the first error that
// stopped it, or nil after a clean shutdown.
func (a *App) Run(ctx context.Context) error {
	defer a.closeBackends()
	if err := a.Listen(); err != nil {
		return err
	}
	svcCtx, stopSvc := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := a.svc.Run(svcCtx); err != nil {
			a.log.Error("core stopped", "err", err)
		}
	})
	wg.Go(func() { a.runPush(svcCtx) })
	wg.Go(func() { a.runJobs(svcCtx) })
	unsubscribe, err := a.subscribe(svcCtx)
	if err != nil {
		stopSvc()
		wg.Wait()
		return fmt.Errorf("subscribe to bus: %w", err)
	}
	pingCtx, stopPing := context.WithCancel(context.Background())
	wg.Go(func() { a.ws.Run(pingCtx) })

	srv := &http.Server{Handler: a.handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second, ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelWarn)}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(a.listener) }()
	var debugSrv *http.Server
	if a.cfg.DebugAddr != "" {
		debugSrv = &http.Server{Addr: a.cfg.DebugAddr, Handler: a.debug, ReadHeaderTimeout: 10 * time.Second}
		wg.Go(func() {
			if err := debugSrv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.log.Error("debug listener failed", "err", err)
			}
		})
	}
	a.log.Info("natter is serving", "addr", a.Addr(), "data", a.cfg.DataDir, "node", a.cfg.NodeID, "cluster", a.cluster != nil)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-serveErr:
	case runErr = <-a.fatal:
		a.log.Error("the node must stop", "err", runErr)
	}
	a.log.Info("shutting down")
	a.draining.Store(true)
	shutCtx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	var sd sync.WaitGroup
	sd.Go(func() { _ = srv.Shutdown(shutCtx) })
	sd.Go(func() { a.ws.Drain(shutCtx, a.cfg.DrainJitter) })
	if debugSrv != nil {
		sd.Go(func() { _ = debugSrv.Shutdown(shutCtx) })
	}
	sd.Wait()
	stopPing()
	unsubscribe()
	stopSvc() // the appender commits what is still queued before it returns
	wg.Wait()
	if errors.Is(runErr, http.ErrServerClosed) {
		runErr = nil
	}
	a.log.Info("stopped")
	return runErr
}

// NodeID returns the node id this node makes ids with.
func (a *App) NodeID() int64 { return a.cfg.NodeID }
