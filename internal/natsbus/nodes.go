package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/internal/chat"
)

// NodeChange is a change of one node id lease, as WatchNodes reports it.
type NodeChange struct {
	Node   int64
	Holder string // who holds the lease now (the key's value); empty when Released
	// Released: the key was deleted (its holder closed the lease) or
	// purged. A key that ages out is not reported on servers before 2.11,
	// which remove it silently: the watcher must time leases out itself
	// (see NodeWatch.TTL).
	Released bool
}

// NodeWatchOptions configures WatchNodes.
type NodeWatchOptions struct {
	Bucket string       // the lease bucket (see LeaseOptions); empty means "natter_nodes"
	Logger *slog.Logger // nil means discard
	// OnChange is called for every put (a lease taken or refreshed) and
	// release of a lease, from one goroutine, in the bucket's order. It
	// must not block.
	OnChange func(NodeChange)
}

// NodeWatch follows the node id leases of a cluster. Create it with
// WatchNodes and stop it with Close.
type NodeWatch struct {
	kv     jetstream.KeyValue
	ttl    time.Duration
	opts   NodeWatchOptions
	ctx    context.Context // ends with Close
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// watchRetry is how long a watch that ended waits before it is made anew.
const watchRetry = time.Second

// WatchNodes watches the lease bucket, which must exist (AcquireNodeID
// creates it), and returns once every existing lease has been passed to
// OnChange. If the watch ends (the bucket was deleted, the consumer lost),
// it is made anew every second, reporting every lease again. It returns
// an invalid_argument error without OnChange and an unavailable error when
// the bucket cannot be watched.
func WatchNodes(ctx context.Context, nc *nats.Conn, opts NodeWatchOptions) (*NodeWatch, error) {
	if opts.OnChange == nil || nc == nil {
		return nil, chat.Errorf(chat.CodeInvalidArgument, "natsbus: WatchNodes needs a connection and OnChange")
	}
	if opts.Bucket == "" {
		opts.Bucket = "natter_nodes"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, chat.Unavailable("natsbus.WatchNodes", err)
	}
	kv, err := js.KeyValue(ctx, opts.Bucket)
	if err != nil {
		return nil, chat.Unavailable("natsbus.WatchNodes", fmt.Errorf("lease bucket %s: %w", opts.Bucket, err))
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, chat.Unavailable("natsbus.WatchNodes", fmt.Errorf("lease bucket %s: %w", opts.Bucket, err))
	}
	w := &NodeWatch{kv: kv, ttl: st.TTL(), opts: opts, done: make(chan struct{})}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	kw, err := w.start(ctx)
	if err != nil {
		w.cancel()
		return nil, chat.Unavailable("natsbus.WatchNodes", err)
	}
	go w.run(kw)
	return w, nil
}

// TTL returns the bucket's TTL when the watch started: a lease that was
// not refreshed for that long has expired.
func (w *NodeWatch) TTL() time.Duration { return w.ttl }

// Close stops the watch and waits until OnChange is no longer called.
func (w *NodeWatch) Close() {
	w.once.Do(w.cancel)
	<-w.done
}

// start makes a watch and passes the existing leases to OnChange.
func (w *NodeWatch) start(ctx context.Context) (jetstream.KeyWatcher, error) {
	kw, err := w.kv.Watch(w.ctx, "node.*")
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", w.opts.Bucket, err)
	}
	for {
		select {
		case e, ok := <-kw.Updates():
			if !ok {
				return nil, fmt.Errorf("watch %s ended while reading the leases", w.opts.Bucket)
			}
			if e == nil {
				return kw, nil
			}
			w.apply(e)
		case <-ctx.Done():
			_ = kw.Stop()
			return nil, fmt.Errorf("reading the leases of %s: %w", w.opts.Bucket, ctx.Err())
		case <-w.ctx.Done():
			_ = kw.Stop()
			return nil, errors.New("closed")
		}
	}
}

func (w *NodeWatch) run(kw jetstream.KeyWatcher) {
	defer close(w.done)
	for {
		if kw != nil {
			w.follow(kw)
			_ = kw.Stop()
			if w.ctx.Err() != nil {
				return
			}
			w.opts.Logger.Warn("natsbus: the node lease watch ended; watching anew", "bucket", w.opts.Bucket)
		}
		select {
		case <-w.ctx.Done():
			return
		case <-time.After(watchRetry):
		}
		var err error
		ctx, cancel := context.WithTimeout(w.ctx, 10*time.Second)
		kw, err = w.start(ctx)
		cancel()
		if err != nil && w.ctx.Err() == nil {
			w.opts.Logger.Warn("natsbus: cannot watch the node leases; retrying", "bucket", w.opts.Bucket, "err", err)
		}
	}
}

// follow passes updates on until the watch ends or Close.
func (w *NodeWatch) follow(kw jetstream.KeyWatcher) {
	for {
		select {
		case e, ok := <-kw.Updates():
			if !ok {
				return
			}
			if e != nil {
				w.apply(e)
			}
		case <-w.ctx.Done():
			return
		}
	}
}

func (w *NodeWatch) apply(e jetstream.KeyValueEntry) {
	id, err := strconv.ParseInt(strings.TrimPrefix(e.Key(), "node."), 10, 64)
	if err != nil || id < 0 || id > MaxNodeID {
		return
	}
	switch e.Operation() {
	case jetstream.KeyValuePut:
		w.opts.OnChange(NodeChange{Node: id, Holder: string(e.Value())})
	case jetstream.KeyValueDelete, jetstream.KeyValuePurge:
		w.opts.OnChange(NodeChange{Node: id, Released: true})
	}
}
