package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/internal/chat"
)

// MaxNodeID is the largest node id a lease hands out (the id generator
// has 10 bits for it).
const MaxNodeID = 1023

// LeaseOptions configures AcquireNodeID.
type LeaseOptions struct {
	Bucket   string        // the lease bucket; empty means "natter_nodes"; created if missing
	Replicas int           // replicas of its stream; zero means 1
	TTL      time.Duration // a lease not refreshed this long expires; zero means 30s
	Refresh  time.Duration // how often the holder refreshes it; zero means TTL/3
	// Want asks for one id (0..MaxNodeID); negative means any free one.
	Want   int64
	Holder string       // written as the key's value, for operators; empty means a random name
	Logger *slog.Logger // nil means discard
}

// Lease is a node id held in a JetStream key-value bucket: key
// node.<id>, created only if absent (so two nodes never hold the same
// id), refreshed every Refresh with a compare-and-set on its revision,
// and aging out after TTL when its holder dies. The bucket's MaxAge is
// the TTL, which works on servers without per-key TTLs.
//
// A holder that cannot refresh (NATS unreachable) keeps its id until
// TTL-Refresh has passed since its last refresh, and then considers the
// lease lost, a Refresh before another node could take it: Lost is
// closed, and the node must stop making ids (it shuts down). A refresh
// that finds the key changed or gone also loses the lease at once.
type Lease struct {
	kv      jetstream.KeyValue
	key     string
	id      int64
	holder  string
	ttl     time.Duration
	refresh time.Duration
	log     *slog.Logger

	mu       sync.Mutex
	revision uint64
	lastOK   time.Time

	lost     chan struct{}
	lostOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// AcquireNodeID takes a free node id from the lease bucket (or the one
// asked for) and keeps it until Close. It returns an unavailable error
// when JetStream cannot be used, and a conflict error when Want is held
// by another node or every id is taken.
func AcquireNodeID(ctx context.Context, nc *nats.Conn, opts LeaseOptions) (*Lease, error) {
	if opts.Bucket == "" {
		opts.Bucket = "natter_nodes"
	}
	if opts.Replicas <= 0 {
		opts.Replicas = 1
	}
	if opts.TTL <= 0 {
		opts.TTL = 30 * time.Second
	}
	if opts.Refresh <= 0 {
		opts.Refresh = opts.TTL / 3
	}
	if opts.Refresh*2 > opts.TTL {
		return nil, chat.Errorf(chat.CodeInvalidArgument, "natsbus: lease refresh %s must be at most half its TTL %s", opts.Refresh, opts.TTL)
	}
	if opts.Want > MaxNodeID {
		return nil, chat.Errorf(chat.CodeInvalidArgument, "natsbus: node id %d is above %d", opts.Want, MaxNodeID)
	}
	if opts.Holder == "" {
		opts.Holder = fmt.Sprintf("node-%016x", rand.Uint64())
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if nc == nil {
		return nil, chat.Errorf(chat.CodeInvalidArgument, "natsbus: no NATS connection")
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, chat.Unavailable("natsbus.AcquireNodeID", err)
	}
	kv, err := ensureKeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket: opts.Bucket, Description: "Natter node id leases", History: 1,
		TTL: opts.TTL, Replicas: opts.Replicas, Storage: jetstream.FileStorage,
	})
	if err != nil {
		return nil, chat.Unavailable("natsbus.AcquireNodeID", fmt.Errorf("lease bucket %s: %w", opts.Bucket, err))
	}
	l := &Lease{kv: kv, holder: opts.Holder, ttl: opts.TTL, refresh: opts.Refresh, log: opts.Logger,
		lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}

	try := func(id int64) (bool, error) {
		key := "node." + strconv.FormatInt(id, 10)
		rev, err := kv.Create(ctx, key, []byte(opts.Holder))
		if errors.Is(err, jetstream.ErrKeyExists) {
			return false, nil
		}
		if err != nil {
			return false, chat.Unavailable("natsbus.AcquireNodeID", err)
		}
		l.key, l.id, l.revision, l.lastOK = key, id, rev, time.Now()
		return true, nil
	}
	if opts.Want >= 0 {
		ok, err := try(opts.Want)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, chat.Errorf(chat.CodeConflict, "node id %d is held by another node (bucket %s); choose another or let nodes pick (-1)", opts.Want, opts.Bucket)
		}
	} else {
		// Start at a random id so that nodes starting together rarely
		// race for the same key; a lost race just moves on.
		start := rand.Int64N(MaxNodeID + 1)
		found := false
		for i := range int64(MaxNodeID + 1) {
			ok, err := try((start + i) % (MaxNodeID + 1))
			if err != nil {
				return nil, err
			}
			if ok {
				found = true
				break
			}
		}
		if !found {
			return nil, chat.Errorf(chat.CodeConflict, "every node id (0..%d) is leased in bucket %s", MaxNodeID, opts.Bucket)
		}
	}
	go l.run()
	return l, nil
}

// ID returns the leased node id.
func (l *Lease) ID() int64 { return l.id }

// Holder returns the name written into the lease.
func (l *Lease) Holder() string { return l.holder }

// Lost is closed when the lease is lost; the node must stop making ids.
func (l *Lease) Lost() <-chan struct{} { return l.lost }

// Valid reports whether the lease is held: not lost, and refreshed within
// TTL-Refresh.
func (l *Lease) Valid() bool {
	select {
	case <-l.lost:
		return false
	default:
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return time.Since(l.lastOK) < l.ttl-l.refresh
}

func (l *Lease) run() {
	defer close(l.done)
	t := time.NewTicker(l.refresh / 4) // retry quickly after a failed refresh
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		l.mu.Lock()
		due := time.Since(l.lastOK) >= l.refresh
		rev := l.revision
		limit := l.ttl - l.refresh
		expired := time.Since(l.lastOK) >= limit
		l.mu.Unlock()
		if expired {
			l.markLost(fmt.Errorf("not refreshed for %s", limit))
			return
		}
		if !due {
			continue
		}
		// The lease counts from when the refresh was sent, not answered.
		sent := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), l.refresh/4)
		newRev, err := l.kv.Update(ctx, l.key, []byte(l.holder), rev)
		if err != nil {
			var apiErr *jetstream.APIError
			if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence {
				newRev, err = l.recover(ctx)
				if errors.Is(err, errLeaseTaken) {
					cancel()
					l.markLost(err)
					return
				}
				// Otherwise (a timeout, NATS away) the next tick tries
				// again, until the lease would expire.
				if err == nil {
					// The key's age is unknown: the write that left it
					// may be any earlier refresh whose answer was lost,
					// and it expires counting from then. Write it again
					// and count from this write.
					sent = time.Now()
					newRev, err = l.kv.Update(ctx, l.key, []byte(l.holder), newRev)
				}
			}
		}
		if err == nil {
			l.shrinkTTL(ctx)
		}
		cancel()
		if err == nil {
			l.mu.Lock()
			l.revision, l.lastOK = newRev, sent
			l.mu.Unlock()
			continue
		}
		l.log.Warn("node id lease refresh failed; retrying", "node_id", l.id, "err", err)
	}
}

// recover handles a refresh whose expected revision did not match: our
// previous refresh may have been applied although its answer was lost (the
// key then still holds our name), or the key may be gone (the bucket was
// recreated or purged: take it again if nobody else has).
//
// It fails with errLeaseTaken when another holder has the key; any other
// error (a timeout on a busy server, NATS away) says nothing about the
// lease, which the caller keeps trying to refresh until it would expire.
func (l *Lease) recover(ctx context.Context) (uint64, error) {
	e, err := l.kv.Get(ctx, l.key)
	switch {
	case err == nil && string(e.Value()) == l.holder:
		return e.Revision(), nil
	case err == nil:
		return 0, fmt.Errorf("%w: the key now names %q", errLeaseTaken, e.Value())
	case errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted):
		rev, cerr := l.kv.Create(ctx, l.key, []byte(l.holder))
		if errors.Is(cerr, jetstream.ErrKeyExists) {
			return 0, fmt.Errorf("%w: the key was gone and another holder took it", errLeaseTaken)
		}
		if cerr != nil {
			return 0, fmt.Errorf("the key was gone and could not be taken again yet: %w", cerr)
		}
		l.log.Warn("node id lease key was gone; taken again", "node_id", l.id)
		return rev, nil
	}
	return 0, fmt.Errorf("cannot read the key after a failed refresh: %w", err)
}

// errLeaseTaken says that another holder has this lease's key.
var errLeaseTaken = errors.New("the node id lease was taken by another holder")

// shrinkTTL adopts the bucket's TTL when another node configured it
// shorter: keys expire by the bucket's TTL, not by ours.
func (l *Lease) shrinkTTL(ctx context.Context) {
	st, err := l.kv.Status(ctx)
	if err != nil {
		return
	}
	if ttl := st.TTL(); ttl > 0 && ttl < l.ttl {
		l.mu.Lock()
		l.log.Warn("node id lease bucket has a shorter TTL than this node's; following it", "node_id", l.id, "bucket_ttl", ttl, "ttl", l.ttl)
		l.ttl = ttl
		if l.refresh*2 > ttl {
			l.refresh = ttl / 3
		}
		l.mu.Unlock()
	}
}

func (l *Lease) markLost(why error) {
	l.lostOnce.Do(func() {
		l.log.Error("node id lease lost", "node_id", l.id, "err", why)
		close(l.lost)
	})
}

// Close stops refreshing and deletes the key (if still ours), so the id
// is free at once rather than after TTL.
func (l *Lease) Close() {
	l.stopOnce.Do(func() {
		close(l.stop)
		<-l.done
		l.mu.Lock()
		rev := l.revision
		l.mu.Unlock()
		select {
		case <-l.lost:
			return
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := l.kv.Delete(ctx, l.key, jetstream.LastRevision(rev)); err != nil {
			l.log.Warn("node id lease not released; it expires by itself", "node_id", l.id, "err", err)
		}
	})
}
