package natsbus

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/natter-chat/natter/internal/chat"
)

// shard holds some of this node's connections and is the only writer of
// their users' keys, so a user's writes happen in order. Its goroutine
// writes the keys of users whose local status changed (dirty), and every
// Refresh re-puts all of them so that they do not age out.
type shard struct {
	p    *Presence
	wake chan struct{} // capacity 1: a pending wake-up suffices

	mu    sync.Mutex // guards conns and dirty
	conns map[chat.UserID]map[int64]chat.Status
	dirty map[chat.UserID]struct{}

	// written is what the bucket holds for each user, as far as this
	// shard knows. Only the shard's goroutine uses it.
	written map[chat.UserID]chat.Status
	// failures counts failed writes since the last warning.
	failures int
	lastErr  error
}

func newShard(p *Presence) *shard {
	return &shard{p: p, wake: make(chan struct{}, 1), conns: make(map[chat.UserID]map[int64]chat.Status),
		dirty: make(map[chat.UserID]struct{}), written: make(map[chat.UserID]chat.Status)}
}

func (s *shard) set(user chat.UserID, conn int64, status chat.Status) {
	s.mu.Lock()
	cs := s.conns[user]
	if cs == nil {
		cs = make(map[int64]chat.Status, 1)
		s.conns[user] = cs
	}
	cs[conn] = status
	s.dirty[user] = struct{}{}
	s.mu.Unlock()
	s.poke()
}

func (s *shard) remove(user chat.UserID, conn int64) {
	s.mu.Lock()
	cs := s.conns[user]
	if _, ok := cs[conn]; !ok {
		s.mu.Unlock()
		return
	}
	delete(cs, conn)
	if len(cs) == 0 {
		delete(s.conns, user)
	}
	s.dirty[user] = struct{}{}
	s.mu.Unlock()
	s.poke()
}

func (s *shard) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// localStatus is a user's status on this node: online if any of cs is,
// away if all are, "" if there are none.
func localStatus(cs map[int64]chat.Status) chat.Status {
	if len(cs) == 0 {
		return ""
	}
	for _, st := range cs {
		if st == chat.StatusOnline {
			return chat.StatusOnline
		}
	}
	return chat.StatusAway
}

// userStatus is one user's local status to be written.
type userStatus struct {
	user   chat.UserID
	status chat.Status
}

func (s *shard) run() {
	defer s.p.writers.Done()
	tick := time.NewTicker(s.p.refresh)
	defer tick.Stop()
	for {
		select {
		case <-s.p.stop:
			// Removals queued before Close are written, so that the
			// users they concern need not wait for TTL.
			ctx, cancel := context.WithTimeout(context.Background(), finalFlushTimeout)
			s.writeAll(ctx, s.takeDirty(), false)
			cancel()
			s.warn()
			return
		case <-s.wake:
			s.writeAll(s.p.ctx, s.takeDirty(), false)
		case <-tick.C:
			s.writeAll(s.p.ctx, s.takeAll(), true)
			s.warn()
		}
	}
}

// takeDirty returns the local status of the users changed since the last
// call.
func (s *shard) takeDirty() []userStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	todo := make([]userStatus, 0, len(s.dirty))
	for u := range s.dirty {
		todo = append(todo, userStatus{u, localStatus(s.conns[u])})
	}
	clear(s.dirty)
	return todo
}

// takeAll returns the local status of every user with connections or with
// a key written, and clears the changed set.
func (s *shard) takeAll() []userStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	todo := make([]userStatus, 0, len(s.conns))
	for u, cs := range s.conns {
		todo = append(todo, userStatus{u, localStatus(cs)})
	}
	for u := range s.written {
		if s.conns[u] == nil {
			todo = append(todo, userStatus{u, ""})
		}
	}
	clear(s.dirty)
	return todo
}

// writeAll writes each user's key: a put of its status, or a delete when
// "" and a key was written. refresh re-puts keys whose value is unchanged.
// A failed write marks the user changed again, for the next Refresh (or
// Close) to retry.
func (s *shard) writeAll(ctx context.Context, todo []userStatus, refresh bool) {
	for _, c := range todo {
		if err := s.write(ctx, c, refresh); err != nil {
			s.failures++
			s.lastErr = err
			s.mu.Lock()
			s.dirty[c.user] = struct{}{}
			s.mu.Unlock()
		}
	}
}

func (s *shard) write(ctx context.Context, c userStatus, refresh bool) error {
	old, had := s.written[c.user]
	key := presenceKey(c.user, s.p.node)
	ctx, cancel := context.WithTimeout(ctx, s.p.refresh)
	defer cancel()
	switch {
	case c.status == "":
		if !had {
			return nil
		}
		if err := s.p.kv.Delete(ctx, key); err != nil {
			return err
		}
		delete(s.written, c.user)
	case had && old == c.status && !refresh:
		return nil
	default:
		if _, err := s.p.kv.Put(ctx, key, []byte(c.status)); err != nil {
			return err
		}
		s.written[c.user] = c.status
	}
	if had && old == chat.StatusOnline && c.status != chat.StatusOnline {
		// The user stopped being online here; if they are online on no
		// other node either, this is their LastSeen.
		s.p.lastSeen.record(c.user, s.p.now())
	}
	return nil
}

// warn logs the write failures since the last call, at most once per
// Refresh, so that an outage does not flood the log.
func (s *shard) warn() {
	if s.failures == 0 {
		return
	}
	s.p.log.Warn("natsbus: presence writes failed; retrying every refresh", "node", s.p.node, "count", s.failures, "err", s.lastErr)
	s.failures, s.lastErr = 0, nil
}

// lastSeenWriter writes lastseen.<user> keys from its own goroutine, so
// that recording never waits for NATS. Records of one user are folded
// into the latest.
type lastSeenWriter struct {
	p    *Presence
	wake chan struct{}
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex
	pending map[chat.UserID]time.Time
}

func newLastSeenWriter(p *Presence) *lastSeenWriter {
	w := &lastSeenWriter{p: p, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		pending: make(map[chat.UserID]time.Time)}
	go w.run()
	return w
}

// record queues at as user's LastSeen unless a later one is queued.
func (w *lastSeenWriter) record(user chat.UserID, at time.Time) {
	w.mu.Lock()
	if cur, ok := w.pending[user]; !ok || at.After(cur) {
		w.pending[user] = at
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *lastSeenWriter) close() {
	close(w.stop)
	<-w.done
}

func (w *lastSeenWriter) run() {
	defer close(w.done)
	retry := time.NewTicker(w.p.refresh)
	defer retry.Stop()
	for {
		select {
		case <-w.stop:
			ctx, cancel := context.WithTimeout(context.Background(), finalFlushTimeout)
			w.flush(ctx)
			cancel()
			return
		case <-w.wake:
			w.flush(w.p.ctx)
		case <-retry.C:
			w.flush(w.p.ctx)
		}
	}
}

// flush writes the queued records; failed ones stay queued for the retry.
func (w *lastSeenWriter) flush(ctx context.Context) {
	w.mu.Lock()
	todo := w.pending
	w.pending = make(map[chat.UserID]time.Time)
	w.mu.Unlock()
	var failed int
	var lastErr error
	for user, at := range todo {
		octx, cancel := context.WithTimeout(ctx, w.p.refresh)
		_, err := w.p.seenKV.Put(octx, lastSeenKey(user), []byte(at.UTC().Format(time.RFC3339Nano)))
		cancel()
		if err != nil {
			failed, lastErr = failed+1, err
			w.mu.Lock()
			if cur, ok := w.pending[user]; !ok || at.After(cur) {
				w.pending[user] = at
			}
			w.mu.Unlock()
		}
	}
	if failed > 0 && !errors.Is(lastErr, context.Canceled) {
		w.p.log.Warn("natsbus: cannot record LastSeen; retrying every refresh", "count", failed, "err", lastErr)
	}
}
