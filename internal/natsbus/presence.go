package natsbus

import (
	"container/list"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/presencewatch"
)

// errClosed is the cause of the errors Presence returns after Close.
var errClosed = errors.New("natsbus: presence is closed")

// PresenceOptions configures a Presence. The zero value is usable.
type PresenceOptions struct {
	// Node names this node in key names. It must be unique in the cluster
	// and a NATS token ([A-Za-z0-9_-]+). Empty means a random id, which is
	// what a node should use unless something else needs the name: a node
	// restarted under the same name takes over its predecessor's keys.
	Node string
	// Bucket is the presence bucket; LastSeen lives in Bucket+"_lastseen".
	// Empty means "natter_presence". Both are created if missing.
	Bucket   string
	Replicas int // replicas of both buckets' streams; zero means 1

	Refresh time.Duration // how often the node re-puts its keys; zero means 5s
	// TTL is how long a key lives without a refresh: a dead node's users
	// go offline TTL+Grace after its last refresh. Zero means 3×Refresh;
	// it must exceed Refresh (and should be at least twice it).
	TTL time.Duration

	Grace       time.Duration    // a user whose last connection closed becomes offline only after this; zero means 5s
	Debounce    time.Duration    // a user's changes are announced at most once per this interval, the latest state winning; zero means 1s
	MaxLastSeen int              // offline users whose LastSeen is cached in memory; zero means 100,000
	QueueSize   int              // announcements a watcher's queue holds before it keeps only the latest per user; zero means 4,096
	Logger      *slog.Logger     // nil means discard
	Now         func() time.Time // nil means time.Now; timers wait real time, so Now must run at real speed

	// noMarkers makes the Presence ignore the server's expiry markers, as
	// if the server predated them (tests).
	noMarkers bool
}

// Presence is chat.Presence on JetStream key-value buckets (see the package
// doc). It has the same semantics as the in-process implementation, per
// node: a user is online while any of their connections on any node is
// online, away while they have connections and all are away, and offline
// once they have had none for Grace; watchers hear of a user's status
// changes at most once per Debounce, the latest state winning, and in the
// order they were made. Every node folds the same key history, so nodes
// agree, each a moment after the change. LastSeen times come from the NATS
// server's clock, or the writing node's when read back from the bucket.
//
// Set and Remove only update this node's memory and wake its writers, so
// they never wait for NATS; a write that fails is retried at the next
// Refresh. A node that stops (Close, crash, partition) leaves its keys to
// expire: its users go offline TTL+Grace later everywhere.
//
// Memory is bounded by the users with keys (or within Grace or Debounce of
// their last change), MaxLastSeen offline users, and per watcher QueueSize
// plus one state per user.
type Presence struct {
	nc      *nats.Conn
	kv      jetstream.KeyValue // presence.<user>.<node>
	seenKV  jetstream.KeyValue // lastseen.<user>
	kw      jetstream.KeyWatcher
	node    string
	markers bool // the server writes a marker when a key ages out

	ttl, refresh, grace, debounce time.Duration
	maxLastSeen, queueSize        int
	now                           func() time.Time
	log                           *slog.Logger

	shards   []*shard
	lastSeen *lastSeenWriter

	ctx       context.Context // done once Close starts: aborts KV operations
	cancel    context.CancelFunc
	stop      chan struct{} // closed by Close
	loopDone  chan struct{} // closed when run has returned
	writers   sync.WaitGroup
	closed    atomic.Bool
	closeOnce sync.Once

	mu        sync.Mutex // guards everything below, every userState and nodeEntry
	users     map[chat.UserID]*userState
	offline   map[chat.UserID]*list.Element // of *offlineUser; an id is never in both users and offline
	gone      *list.List                    // offline users, the most recently gone at the front
	deadlines deadlineHeap
	watchers  map[*presencewatch.Watcher]struct{}
	broken    error // why the bucket watch ended, if it did
}

var _ chat.Presence = (*Presence)(nil)

// shardCount is the number of writer goroutines per node. A user's keys
// are always written by the same one, so their writes stay in order.
const shardCount = 4

// finalFlushTimeout bounds the writes Close makes for changes still queued.
const finalFlushTimeout = 3 * time.Second

// NewPresence creates or updates the buckets, starts watching them and
// returns once this node has read every existing key. Call Close to stop
// it. It returns an invalid_argument error for bad options and an
// unavailable error when JetStream cannot be used.
func NewPresence(ctx context.Context, nc *nats.Conn, opts PresenceOptions) (*Presence, error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	if nc == nil {
		return nil, chat.Errorf(chat.CodeInvalidArgument, "natsbus: no NATS connection")
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, chat.Unavailable("natsbus.NewPresence", err)
	}
	info, err := js.AccountInfo(ctx)
	if err != nil {
		return nil, chat.Unavailable("natsbus.NewPresence", fmt.Errorf("JetStream: %w", err))
	}
	p := &Presence{
		nc: nc, node: opts.Node,
		// API level 1 (server 2.11) brought markers for keys that age out.
		markers: info.API.Level >= 1 && !opts.noMarkers,
		ttl:     opts.TTL, refresh: opts.Refresh, grace: opts.Grace, debounce: opts.Debounce,
		maxLastSeen: opts.MaxLastSeen, queueSize: opts.QueueSize, now: opts.Now, log: opts.Logger,
		stop: make(chan struct{}), loopDone: make(chan struct{}),
		users: make(map[chat.UserID]*userState), offline: make(map[chat.UserID]*list.Element),
		gone: list.New(), watchers: make(map[*presencewatch.Watcher]struct{}),
	}
	cfg := jetstream.KeyValueConfig{
		Bucket:      opts.Bucket,
		Description: "Natter presence: presence.<user>.<node> = online|away, refreshed by the node",
		TTL:         opts.TTL,
		Storage:     jetstream.FileStorage,
		Replicas:    opts.Replicas,
	}
	if p.markers {
		cfg.LimitMarkerTTL = max(opts.TTL, time.Second)
	}
	if p.kv, err = ensureKeyValue(ctx, js, cfg); err != nil {
		return nil, chat.Unavailable("natsbus.NewPresence", fmt.Errorf("bucket %s: %w", cfg.Bucket, err))
	}
	seenCfg := jetstream.KeyValueConfig{
		Bucket:      opts.Bucket + "_lastseen",
		Description: "Natter presence: lastseen.<user> = when the user last stopped being online",
		Storage:     jetstream.FileStorage,
		Replicas:    opts.Replicas,
	}
	if p.seenKV, err = ensureKeyValue(ctx, js, seenCfg); err != nil {
		return nil, chat.Unavailable("natsbus.NewPresence", fmt.Errorf("bucket %s: %w", seenCfg.Bucket, err))
	}
	if p.kw, err = p.kv.Watch(ctx, "presence.>"); err != nil {
		return nil, chat.Unavailable("natsbus.NewPresence", fmt.Errorf("watch %s: %w", cfg.Bucket, err))
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.lastSeen = newLastSeenWriter(p)
	for range shardCount {
		s := newShard(p)
		p.shards = append(p.shards, s)
		p.writers.Add(1)
		go s.run()
	}
	ready := make(chan struct{})
	go p.run(p.kw.Updates(), ready)
	select {
	case <-ready:
	case <-ctx.Done():
		p.Close()
		return nil, chat.Unavailable("natsbus.NewPresence", fmt.Errorf("reading the presence bucket: %w", ctx.Err()))
	}
	p.mu.Lock()
	broken := p.broken
	p.mu.Unlock()
	if broken != nil {
		p.Close()
		return nil, chat.Unavailable("natsbus.NewPresence", broken)
	}
	p.log.Info("natsbus: presence started", "node", p.node, "bucket", cfg.Bucket, "expiry_markers", p.markers)
	return p, nil
}

// fill applies the documented defaults and validates o.
func (o *PresenceOptions) fill() error {
	var problems []string
	if o.Node == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		o.Node = hex.EncodeToString(b[:])
	} else if !tokenPattern.MatchString(o.Node) {
		problems = append(problems, fmt.Sprintf("node id %q is not a NATS token ([A-Za-z0-9_-]+)", o.Node))
	}
	if o.Bucket == "" {
		o.Bucket = "natter_presence"
	} else if !tokenPattern.MatchString(o.Bucket) {
		problems = append(problems, fmt.Sprintf("bucket %q is not a valid bucket name ([A-Za-z0-9_-]+)", o.Bucket))
	}
	if o.Refresh <= 0 {
		o.Refresh = 5 * time.Second
	}
	if o.TTL <= 0 {
		o.TTL = 3 * o.Refresh
	}
	if o.TTL <= o.Refresh {
		problems = append(problems, fmt.Sprintf("TTL %v must exceed Refresh %v", o.TTL, o.Refresh))
	}
	if o.Grace <= 0 {
		o.Grace = 5 * time.Second
	}
	if o.Debounce <= 0 {
		o.Debounce = time.Second
	}
	if o.MaxLastSeen <= 0 {
		o.MaxLastSeen = 100_000
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 4096
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if len(problems) > 0 {
		return chat.Errorf(chat.CodeInvalidArgument, "natsbus: %s", strings.Join(problems, "; "))
	}
	return nil
}

// Node returns this node's id in key names.
func (p *Presence) Node() string { return p.node }

// Set implements chat.Presence. It returns an invalid_argument error when
// status is neither online nor away, and an unavailable error after Close.
// It does not wait for NATS.
func (p *Presence) Set(_ context.Context, user chat.UserID, conn int64, status chat.Status) error {
	if status != chat.StatusOnline && status != chat.StatusAway {
		return chat.Errorf(chat.CodeInvalidArgument, "a connection's presence must be %q or %q, not %q",
			chat.StatusOnline, chat.StatusAway, status)
	}
	if p.closed.Load() {
		return chat.Unavailable("natsbus.Presence.Set", errClosed)
	}
	p.shardOf(user).set(user, conn, status)
	return nil
}

// Remove implements chat.Presence. Removing an unknown connection does
// nothing. It returns an unavailable error after Close. It does not wait
// for NATS.
func (p *Presence) Remove(_ context.Context, user chat.UserID, conn int64) error {
	if p.closed.Load() {
		return chat.Unavailable("natsbus.Presence.Remove", errClosed)
	}
	p.shardOf(user).remove(user, conn)
	return nil
}

func (p *Presence) shardOf(user chat.UserID) *shard {
	return p.shards[uint64(user)%uint64(len(p.shards))]
}

// Get implements chat.Presence from this node's copy of the presence
// bucket; the LastSeen of offline users it does not remember is read from
// the lastseen bucket. It returns an unavailable error after Close, when
// the bucket watch has failed, or when a read fails.
func (p *Presence) Get(ctx context.Context, users []chat.UserID) ([]chat.PresenceState, error) {
	states := make([]chat.PresenceState, len(users))
	var missing []int // indexes of states whose LastSeen must be read
	p.mu.Lock()
	if p.closed.Load() || p.broken != nil {
		err := p.broken
		if err == nil {
			err = errClosed
		}
		p.mu.Unlock()
		return nil, chat.Unavailable("natsbus.Presence.Get", err)
	}
	var now time.Time
	for i, id := range users {
		st := chat.PresenceState{User: id, Status: chat.StatusOffline}
		if u := p.users[id]; u != nil {
			st.Status, st.LastSeen = u.status, u.lastSeen
			switch {
			case u.status == chat.StatusOnline:
				if now.IsZero() {
					now = p.now()
				}
				st.LastSeen = now
			case !u.known:
				missing = append(missing, i) // present since before this node started
			}
		} else if e := p.offline[id]; e != nil {
			st.LastSeen = e.Value.(*offlineUser).lastSeen
		} else {
			missing = append(missing, i)
		}
		states[i] = st
	}
	p.mu.Unlock()
	if len(missing) == 0 {
		return states, nil
	}
	read, err := p.readLastSeen(ctx, states, missing)
	if err != nil {
		return nil, chat.Unavailable("natsbus.Presence.Get", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, i := range missing {
		st := &states[i]
		st.LastSeen = read[st.User]
		if u := p.users[st.User]; u != nil {
			if !u.known {
				u.lastSeen, u.known = st.LastSeen, true
			}
		} else if p.offline[st.User] == nil {
			p.rememberOfflineLocked(&offlineUser{id: st.User, lastSeen: st.LastSeen})
		}
	}
	return states, nil
}

// readLastSeen reads the lastseen keys of the users of states[missing],
// a few at a time. Users never seen have the zero time.
func (p *Presence) readLastSeen(ctx context.Context, states []chat.PresenceState, missing []int) (map[chat.UserID]time.Time, error) {
	const parallel = 8
	var (
		mu    sync.Mutex
		read  = make(map[chat.UserID]time.Time, len(missing))
		first error
		wg    sync.WaitGroup
		sem   = make(chan struct{}, parallel)
	)
	for _, i := range missing {
		id := states[i].User
		mu.Lock()
		_, dup := read[id]
		read[id] = time.Time{}
		mu.Unlock()
		if dup {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			var at time.Time
			e, err := p.seenKV.Get(ctx, lastSeenKey(id))
			if err == nil {
				at, err = time.Parse(time.RFC3339Nano, string(e.Value()))
			} else if errors.Is(err, jetstream.ErrKeyNotFound) {
				err = nil
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil && first == nil {
				first = fmt.Errorf("read LastSeen of user %d: %w", id, err)
			}
			read[id] = at
		})
	}
	wg.Wait()
	return read, first
}

// Watch implements chat.Presence. A handler that falls behind by more than
// QueueSize announcements makes no one wait, and then sees only the latest
// state of each user whose state changed meanwhile. handle must not call
// cancel or Close. Watch returns an unavailable error after Close.
func (p *Presence) Watch(ctx context.Context, handle func(chat.PresenceState)) (cancel func(), err error) {
	w := presencewatch.New(p.queueSize)
	p.mu.Lock()
	if p.closed.Load() {
		p.mu.Unlock()
		return nil, chat.Unavailable("natsbus.Presence.Watch", errClosed)
	}
	p.watchers[w] = struct{}{}
	p.mu.Unlock()
	go func() {
		w.Run(ctx, handle)
		p.mu.Lock()
		delete(p.watchers, w)
		p.mu.Unlock()
	}()
	return func() { w.Halt(); <-w.Done() }, nil
}

// Close stops refreshing this node's keys (they expire after TTL unless
// their connections were removed first), writes the changes still queued
// (for up to 3s), stops the bucket watch and every watcher, and waits for
// all of its goroutines; handlers are not called once it returns. Later
// calls of the other methods return an unavailable error. Close may be
// called more than once. It does not close the NATS connection.
func (p *Presence) Close() {
	p.closeOnce.Do(func() {
		p.closed.Store(true)
		p.cancel()
		close(p.stop)
		p.writers.Wait()
		<-p.loopDone
		p.lastSeen.close()
		// Cancelling p.ctx may have ended the watch already.
		if err := p.kw.Stop(); err != nil && !errors.Is(err, nats.ErrBadSubscription) {
			p.log.Warn("natsbus: cannot stop the presence bucket watch", "err", err)
		}
		p.mu.Lock()
		ws := make([]*presencewatch.Watcher, 0, len(p.watchers))
		for w := range p.watchers {
			ws = append(ws, w)
		}
		p.mu.Unlock()
		for _, w := range ws {
			w.Halt()
			<-w.Done()
		}
	})
}

// presenceKey is the key of user's status on node.
func presenceKey(user chat.UserID, node string) string {
	return "presence." + strconv.FormatInt(int64(user), 10) + "." + node
}

// parseKey splits a presence key into user and node.
func parseKey(key string) (chat.UserID, string, bool) {
	rest, ok := strings.CutPrefix(key, "presence.")
	if !ok {
		return 0, "", false
	}
	user, node, ok := strings.Cut(rest, ".")
	id, err := strconv.ParseInt(user, 10, 64)
	if !ok || err != nil || node == "" {
		return 0, "", false
	}
	return chat.UserID(id), node, true
}

func lastSeenKey(user chat.UserID) string {
	return "lastseen." + strconv.FormatInt(int64(user), 10)
}
