package membus

import (
	"container/list"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/presencewatch"
)

// errPresenceClosed is the cause of the error every Presence method returns
// after Close.
var errPresenceClosed = errors.New("membus: presence is closed")

// PresenceOptions configures a Presence. The zero value is usable.
type PresenceOptions struct {
	Grace       time.Duration    // a user whose last connection closed becomes offline only after this; zero means 5s
	Debounce    time.Duration    // a user's changes are announced at most once per this interval, the latest state winning; zero means 1s
	MaxLastSeen int              // offline users whose LastSeen is remembered, the longest offline forgotten first; zero means 100,000
	QueueSize   int              // announcements a watcher's queue holds before it keeps only the latest per user; zero means 4,096
	Now         func() time.Time // nil means time.Now
	// AfterFunc runs f once after d unless stop, called first, returns
	// true; it must not call f before returning (time.AfterFunc's
	// contract). Nil means time.AfterFunc. Tests pass a fake to drive
	// Grace and Debounce deterministically.
	AfterFunc func(d time.Duration, f func()) (stop func() bool)
}

// Presence is chat.Presence in process memory, for embedded mode. The zero
// value is not usable; call NewPresence.
//
// A user is online while any of their connections is online, away while
// they have connections and all are away, and offline once they have had
// none for Grace: a connection that closes and reappears within Grace (a
// flap) changes nothing. Watchers hear of changes of a user's Status, never
// of single connections, and at most once per Debounce per user: the first
// change after a quiet Debounce is announced at once, later ones in the
// same window are folded into one announcement of the latest state at the
// window's end, and none is made if that state is the one last announced.
// Announcements of one user reach each watcher in the order they were made.
//
// LastSeen is when the user's status last stopped being online: when they
// went away, or when their last connection closed if they then went
// offline. Get and announcements report the current time as the LastSeen of
// online users.
//
// Each watcher has a queue of QueueSize announcements and its own
// goroutine, so no one waits for a slow handler; when the queue is full,
// further announcements are folded into one pending state per user, the
// latest, delivered after the queue. Memory is thus bounded by the users
// with connections (or within Grace or Debounce of their last change),
// at most MaxLastSeen offline users, and per watcher QueueSize plus one
// state per user.
type Presence struct {
	grace       time.Duration
	debounce    time.Duration
	maxLastSeen int
	queueSize   int
	now         func() time.Time
	afterFunc   func(time.Duration, func()) func() bool

	// timers counts scheduled callbacks that have been neither stopped nor
	// finished, so that Close can wait for them.
	timers sync.WaitGroup

	mu       sync.Mutex // guards everything below, and every presenceUser
	closed   bool
	users    map[chat.UserID]*presenceUser // live users: see tidyLocked for when one leaves
	offline  map[chat.UserID]*list.Element // of *offlineUser; an id is never in both users and offline
	gone     *list.List                    // offline users, the most recently gone at the front
	watchers map[*presencewatch.Watcher]struct{}
}

var _ chat.Presence = (*Presence)(nil)

// presenceUser is a user with connections, or whose last connection closed
// less than Grace ago, or with an announcement pending. Invariant: when
// debounce is nil, announced == status.
type presenceUser struct {
	id          chat.UserID
	conns       map[int64]chat.Status
	online      int         // connections in conns that are online
	status      chat.Status // effective status; within Grace, the status before the last connection closed
	lastSeen    time.Time
	closedAt    time.Time // when the last connection closed, while grace is pending
	grace       *timer    // pending while the user has no connections and Grace has not passed
	announced   chat.Status
	announcedAt time.Time // zero if never announced
	debounce    *timer    // pending while a change waits for the end of the Debounce window
}

// offlineUser is what is remembered of a user gone offline.
type offlineUser struct {
	id          chat.UserID
	lastSeen    time.Time
	announcedAt time.Time
}

// timer is one scheduled callback; its identity tells a callback that fired
// late (after being replaced or stopped) that it is stale.
type timer struct{ stop func() bool }

// NewPresence returns an empty Presence. Call Close to stop its timers and
// watchers.
func NewPresence(opts PresenceOptions) *Presence {
	p := &Presence{
		grace:       opts.Grace,
		debounce:    opts.Debounce,
		maxLastSeen: opts.MaxLastSeen,
		queueSize:   opts.QueueSize,
		now:         opts.Now,
		afterFunc:   opts.AfterFunc,
		users:       make(map[chat.UserID]*presenceUser),
		offline:     make(map[chat.UserID]*list.Element),
		gone:        list.New(),
		watchers:    make(map[*presencewatch.Watcher]struct{}),
	}
	if p.grace <= 0 {
		p.grace = 5 * time.Second
	}
	if p.debounce <= 0 {
		p.debounce = time.Second
	}
	if p.maxLastSeen <= 0 {
		p.maxLastSeen = 100_000
	}
	if p.queueSize <= 0 {
		p.queueSize = 4096
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.afterFunc == nil {
		p.afterFunc = func(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }
	}
	return p
}

// Set implements chat.Presence. It returns an invalid_argument error when
// status is neither online nor away, and an unavailable error after Close.
func (p *Presence) Set(_ context.Context, user chat.UserID, conn int64, status chat.Status) error {
	if status != chat.StatusOnline && status != chat.StatusAway {
		return chat.Errorf(chat.CodeInvalidArgument, "a connection's presence must be %q or %q, not %q",
			chat.StatusOnline, chat.StatusAway, status)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return chat.Unavailable("membus.Presence.Set", errPresenceClosed)
	}
	u := p.userLocked(user)
	old, had := u.conns[conn]
	if had && old == status {
		return nil
	}
	if had && old == chat.StatusOnline {
		u.online--
	}
	u.conns[conn] = status
	if status == chat.StatusOnline {
		u.online++
	}
	if u.grace != nil { // the user came back within Grace: no offline
		p.stopLocked(u.grace)
		u.grace = nil
	}
	p.updateLocked(u, p.now())
	return nil
}

// Remove implements chat.Presence. Removing an unknown connection does
// nothing. It returns an unavailable error after Close.
func (p *Presence) Remove(_ context.Context, user chat.UserID, conn int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return chat.Unavailable("membus.Presence.Remove", errPresenceClosed)
	}
	u := p.users[user]
	if u == nil {
		return nil
	}
	old, had := u.conns[conn]
	if !had {
		return nil
	}
	delete(u.conns, conn)
	if old == chat.StatusOnline {
		u.online--
	}
	now := p.now()
	if len(u.conns) == 0 {
		u.closedAt = now
		u.grace = p.scheduleLocked(p.grace, func(t *timer) {
			if u.grace != t {
				return // stopped by a Set that lost the race with this call
			}
			u.grace = nil
			p.updateLocked(u, u.closedAt)
		})
	}
	p.updateLocked(u, now)
	return nil
}

// Get implements chat.Presence. It returns an unavailable error after
// Close.
func (p *Presence) Get(_ context.Context, users []chat.UserID) ([]chat.PresenceState, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, chat.Unavailable("membus.Presence.Get", errPresenceClosed)
	}
	var now time.Time
	states := make([]chat.PresenceState, len(users))
	for i, id := range users {
		st := chat.PresenceState{User: id, Status: chat.StatusOffline}
		if u := p.users[id]; u != nil {
			st.Status, st.LastSeen = u.status, u.lastSeen
			if u.status == chat.StatusOnline {
				if now.IsZero() {
					now = p.now()
				}
				st.LastSeen = now
			}
		} else if e := p.offline[id]; e != nil {
			st.LastSeen = e.Value.(*offlineUser).lastSeen
		}
		states[i] = st
	}
	return states, nil
}

// Watch implements chat.Presence. A handler that falls behind by more than
// QueueSize announcements makes no one wait, and then sees only the latest
// state of each user whose state changed meanwhile. handle must not call
// cancel or Close. Watch returns an unavailable error after Close.
func (p *Presence) Watch(ctx context.Context, handle func(chat.PresenceState)) (cancel func(), err error) {
	w := presencewatch.New(p.queueSize)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, chat.Unavailable("membus.Presence.Watch", errPresenceClosed)
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

// Close stops every timer and watcher and waits for them; handlers are not
// called once it returns. Later calls of the other methods return an
// unavailable error. Close may be called more than once.
func (p *Presence) Close() {
	p.mu.Lock()
	p.closed = true
	for _, u := range p.users {
		if u.grace != nil {
			p.stopLocked(u.grace)
			u.grace = nil
		}
		if u.debounce != nil {
			p.stopLocked(u.debounce)
			u.debounce = nil
		}
	}
	ws := make([]*presencewatch.Watcher, 0, len(p.watchers))
	for w := range p.watchers {
		ws = append(ws, w)
	}
	p.mu.Unlock()
	for _, w := range ws {
		w.Halt()
		<-w.Done()
	}
	p.timers.Wait() // callbacks that fired before Close find p closed and return
}

// userLocked returns the live state of id, creating it (offline, with what
// is remembered of the user) if needed. p.mu must be held.
func (p *Presence) userLocked(id chat.UserID) *presenceUser {
	if u := p.users[id]; u != nil {
		return u
	}
	u := &presenceUser{
		id:        id,
		conns:     make(map[int64]chat.Status, 1),
		status:    chat.StatusOffline,
		announced: chat.StatusOffline,
	}
	if e := p.offline[id]; e != nil {
		o := e.Value.(*offlineUser)
		u.lastSeen, u.announcedAt = o.lastSeen, o.announcedAt
		p.gone.Remove(e)
		delete(p.offline, id)
	}
	p.users[id] = u
	return u
}

// updateLocked recomputes u's effective status after a change that
// happened at at, announces it if it changed, and forgets u if it is no
// longer live. p.mu must be held.
func (p *Presence) updateLocked(u *presenceUser, at time.Time) {
	next := chat.StatusOffline
	switch {
	case u.online > 0:
		next = chat.StatusOnline
	case len(u.conns) > 0:
		next = chat.StatusAway
	case u.grace != nil:
		next = u.status
	}
	if next != u.status {
		if u.status == chat.StatusOnline {
			u.lastSeen = at
		}
		u.status = next
		p.changedLocked(u)
	}
	p.tidyLocked(u)
}

// changedLocked announces u's status now, or at the end of the current
// Debounce window if one was already announced in it. p.mu must be held.
func (p *Presence) changedLocked(u *presenceUser) {
	if u.debounce != nil || u.status == u.announced {
		return // the pending announcement will carry the latest state
	}
	var wait time.Duration
	if !u.announcedAt.IsZero() {
		wait = u.announcedAt.Add(p.debounce).Sub(p.now())
	}
	if wait <= 0 {
		p.announceLocked(u)
		return
	}
	u.debounce = p.scheduleLocked(wait, func(t *timer) {
		if u.debounce != t {
			return
		}
		u.debounce = nil
		if u.status != u.announced {
			p.announceLocked(u)
		}
		p.tidyLocked(u)
	})
}

// announceLocked queues u's state for every watcher. p.mu must be held.
func (p *Presence) announceLocked(u *presenceUser) {
	now := p.now()
	st := chat.PresenceState{User: u.id, Status: u.status, LastSeen: u.lastSeen}
	if u.status == chat.StatusOnline {
		st.LastSeen = now
	}
	u.announced, u.announcedAt = u.status, now
	for w := range p.watchers {
		w.Push(st)
	}
}

// tidyLocked moves u to the offline list once nothing about it is pending:
// no connection, no Grace and no Debounce timer (so u is offline and that
// was announced). The list keeps the p.maxLastSeen most recently gone
// users. p.mu must be held.
func (p *Presence) tidyLocked(u *presenceUser) {
	if len(u.conns) > 0 || u.grace != nil || u.debounce != nil {
		return
	}
	delete(p.users, u.id)
	p.offline[u.id] = p.gone.PushFront(&offlineUser{id: u.id, lastSeen: u.lastSeen, announcedAt: u.announcedAt})
	for p.gone.Len() > p.maxLastSeen {
		oldest := p.gone.Back()
		delete(p.offline, p.gone.Remove(oldest).(*offlineUser).id)
	}
}

// scheduleLocked calls f with p.mu held after d, unless p is closed first.
// f receives the returned timer so it can tell whether it is still wanted.
// p.mu must be held.
func (p *Presence) scheduleLocked(d time.Duration, f func(t *timer)) *timer {
	t := &timer{}
	p.timers.Add(1)
	t.stop = p.afterFunc(d, func() {
		defer p.timers.Done()
		p.mu.Lock()
		defer p.mu.Unlock()
		if !p.closed {
			f(t)
		}
	})
	return t
}

// stopLocked stops t. If t already fired, its callback runs anyway and
// must find itself stale. p.mu must be held.
func (p *Presence) stopLocked(t *timer) {
	if t.stop() {
		p.timers.Done()
	}
}
