package natsbus

import (
	"container/heap"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/internal/chat"
)

// userState is a user with keys in the bucket, or whose last key went
// less than Grace ago, or with an announcement pending. Invariant: when
// debounceAt is zero, announced == status.
type userState struct {
	id     chat.UserID
	nodes  map[string]*nodeEntry
	online int         // entries in nodes that are online
	status chat.Status // effective status; within Grace, the status before the last key went
	// lastSeen is when status last stopped being online; known says it is
	// (zero may then mean never), else the lastseen bucket is asked.
	lastSeen time.Time
	known    bool
	closedAt time.Time // when the last key went, while Grace is pending
	// recordOnGrace: the last key aged out (its node is gone), so this
	// node records LastSeen if the user goes offline.
	recordOnGrace bool
	graceAt       time.Time // zero unless Grace is pending
	announced     chat.Status
	announcedAt   time.Time // zero if never announced
	debounceAt    time.Time // zero unless an announcement waits for the end of the Debounce window
}

// nodeEntry is one key presence.<user>.<node>.
type nodeEntry struct {
	status chat.Status
	put    time.Time // the server's time of the latest put
	// seen is this node's time when the latest put arrived: the key counts
	// as aged out at seen+TTL. expiryAt is when its one deadline is due.
	seen     time.Time
	expiryAt time.Time
}

// offlineUser is what is remembered of a user gone offline.
type offlineUser struct {
	id          chat.UserID
	lastSeen    time.Time
	announcedAt time.Time
}

type deadlineKind uint8

const (
	keyExpiry deadlineKind = iota
	graceEnd
	debounceEnd
)

// deadline is something due at at. A deadline is stale, and ignored, when
// the user's or entry's corresponding time no longer equals at.
type deadline struct {
	at   time.Time
	kind deadlineKind
	user chat.UserID
	node string // for keyExpiry
}

type deadlineHeap []deadline

func (h deadlineHeap) Len() int           { return len(h) }
func (h deadlineHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h deadlineHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *deadlineHeap) Push(x any)        { *h = append(*h, x.(deadline)) }
func (h *deadlineHeap) Pop() any {
	old := *h
	d := old[len(old)-1]
	*h = old[:len(old)-1]
	return d
}

// run folds the bucket's updates into p.users and fires deadlines until
// Close. It closes ready once the bucket's existing keys are read (or the
// watch failed).
func (p *Presence) run(updates <-chan jetstream.KeyValueEntry, ready chan<- struct{}) {
	defer close(p.loopDone)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	// While the connection is down no refresh arrives; keys must not be
	// taken for aged out because of that, so their clocks restart.
	health := time.NewTicker(min(p.refresh, p.ttl/4))
	defer health.Stop()
	reconnects := p.nc.Stats().Reconnects
	starting := true
	for {
		select {
		case <-p.stop:
			return
		case e, ok := <-updates:
			switch {
			case !ok:
				updates = nil
				p.mu.Lock()
				p.broken = errors.New("the presence bucket watch ended")
				p.mu.Unlock()
				if !p.closed.Load() { // Close ends it on purpose
					p.log.Error("natsbus: presence bucket watch ended; presence is unavailable on this node", "node", p.node)
				}
				if starting {
					starting = false
					close(ready)
				}
			case e == nil: // the existing keys have been read
				if starting {
					starting = false
					close(ready)
				}
			default:
				p.mu.Lock()
				p.applyLocked(e)
				p.mu.Unlock()
			}
		case <-timer.C:
		case <-health.C:
			if r := p.nc.Stats().Reconnects; r != reconnects || !p.nc.IsConnected() {
				reconnects = r
				p.mu.Lock()
				now := p.now()
				for _, u := range p.users {
					for _, ent := range u.nodes {
						ent.seen = now
					}
				}
				p.mu.Unlock()
			}
		}
		p.mu.Lock()
		p.fireDueLocked()
		var next time.Time
		if len(p.deadlines) > 0 {
			next = p.deadlines[0].at
		}
		p.mu.Unlock()
		if !next.IsZero() {
			timer.Reset(max(next.Sub(p.now()), 0))
		}
	}
}

// applyLocked folds one update of the bucket. p.mu must be held.
func (p *Presence) applyLocked(e jetstream.KeyValueEntry) {
	user, node, ok := parseKey(e.Key())
	if !ok {
		return
	}
	switch e.Operation() {
	case jetstream.KeyValuePut:
		st := chat.Status(e.Value())
		if st != chat.StatusOnline && st != chat.StatusAway {
			p.log.Warn("natsbus: ignored a presence key with a bad value", "user", user, "node", node)
			return
		}
		p.putLocked(user, node, st, e.Created())
	case jetstream.KeyValueDelete: // the node removed the user's last local connection
		if u := p.users[user]; u != nil {
			p.removeLocked(u, node, e.Created(), false)
		}
	case jetstream.KeyValuePurge: // the server's marker: the key aged out, its node is gone
		if u := p.users[user]; u != nil {
			if ent := u.nodes[node]; ent != nil {
				p.removeLocked(u, node, ent.put, true)
			}
		}
	}
}

// putLocked records that node reports user as st since at (server time).
// p.mu must be held.
func (p *Presence) putLocked(user chat.UserID, node string, st chat.Status, at time.Time) {
	now := p.now()
	u := p.userLocked(user)
	ent := u.nodes[node]
	if ent == nil {
		ent = &nodeEntry{expiryAt: now.Add(p.ttl)}
		u.nodes[node] = ent
		p.pushLocked(deadline{at: ent.expiryAt, kind: keyExpiry, user: user, node: node})
	} else if ent.status == chat.StatusOnline {
		u.online--
	}
	ent.status, ent.put, ent.seen = st, at, now
	if st == chat.StatusOnline {
		u.online++
	}
	u.graceAt = time.Time{} // back within Grace (if it was pending): no offline
	p.updateLocked(u, at, false)
}

// removeLocked records that u's key on node went at at (server time);
// aged says it aged out rather than being deleted by its node. p.mu must
// be held.
func (p *Presence) removeLocked(u *userState, node string, at time.Time, aged bool) {
	ent := u.nodes[node]
	if ent == nil {
		return
	}
	delete(u.nodes, node)
	if ent.status == chat.StatusOnline {
		u.online--
	}
	if len(u.nodes) == 0 {
		u.closedAt, u.recordOnGrace = at, aged
		u.graceAt = p.now().Add(p.grace)
		p.pushLocked(deadline{at: u.graceAt, kind: graceEnd, user: u.id})
	}
	p.updateLocked(u, at, aged)
}

// updateLocked recomputes u's effective status after a change that
// happened at at, announces it if it changed, and forgets u if it is no
// longer live. record says this node must write LastSeen to the bucket if
// u stops being online: the node that caused the change cannot (its key
// aged out). Nodes record their own changes themselves (see shard.write).
// p.mu must be held.
func (p *Presence) updateLocked(u *userState, at time.Time, record bool) {
	next := chat.StatusOffline
	switch {
	case u.online > 0:
		next = chat.StatusOnline
	case len(u.nodes) > 0:
		next = chat.StatusAway
	case !u.graceAt.IsZero():
		next = u.status
	}
	if next != u.status {
		if u.status == chat.StatusOnline {
			u.lastSeen, u.known = at, true
			if record {
				p.lastSeen.record(u.id, at)
			}
		}
		u.status = next
		p.changedLocked(u)
	}
	p.tidyLocked(u)
}

// fireDueLocked handles the deadlines that are due. p.mu must be held.
func (p *Presence) fireDueLocked() {
	now := p.now()
	for len(p.deadlines) > 0 && !p.deadlines[0].at.After(now) {
		d := heap.Pop(&p.deadlines).(deadline)
		u := p.users[d.user]
		if u == nil {
			continue
		}
		switch d.kind {
		case keyExpiry:
			ent := u.nodes[d.node]
			if ent == nil || !ent.expiryAt.Equal(d.at) {
				continue
			}
			if end := ent.seen.Add(p.ttl); end.After(now) { // refreshed since
				ent.expiryAt = end
				p.pushLocked(deadline{at: end, kind: keyExpiry, user: d.user, node: d.node})
				continue
			}
			p.log.Debug("natsbus: presence key aged out", "user", d.user, "node", d.node)
			p.removeLocked(u, d.node, ent.put, true)
		case graceEnd:
			if !u.graceAt.Equal(d.at) {
				continue
			}
			u.graceAt = time.Time{}
			p.updateLocked(u, u.closedAt, u.recordOnGrace)
		case debounceEnd:
			if !u.debounceAt.Equal(d.at) {
				continue
			}
			u.debounceAt = time.Time{}
			if u.status != u.announced {
				p.announceLocked(u)
			}
			p.tidyLocked(u)
		}
	}
}

func (p *Presence) pushLocked(d deadline) { heap.Push(&p.deadlines, d) }

// changedLocked announces u's status now, or at the end of the current
// Debounce window if one was already announced in it. p.mu must be held.
func (p *Presence) changedLocked(u *userState) {
	if !u.debounceAt.IsZero() || u.status == u.announced {
		return // the pending announcement will carry the latest state
	}
	now := p.now()
	if u.announcedAt.IsZero() || !u.announcedAt.Add(p.debounce).After(now) {
		p.announceLocked(u)
		return
	}
	u.debounceAt = u.announcedAt.Add(p.debounce)
	p.pushLocked(deadline{at: u.debounceAt, kind: debounceEnd, user: u.id})
}

// announceLocked queues u's state for every watcher. p.mu must be held.
func (p *Presence) announceLocked(u *userState) {
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

// userLocked returns the live state of id, creating it (offline, with what
// is remembered of the user) if needed. p.mu must be held.
func (p *Presence) userLocked(id chat.UserID) *userState {
	if u := p.users[id]; u != nil {
		return u
	}
	u := &userState{id: id, nodes: make(map[string]*nodeEntry, 1), status: chat.StatusOffline, announced: chat.StatusOffline}
	if e := p.offline[id]; e != nil {
		o := e.Value.(*offlineUser)
		u.lastSeen, u.known, u.announcedAt = o.lastSeen, true, o.announcedAt
		p.gone.Remove(e)
		delete(p.offline, id)
	}
	p.users[id] = u
	return u
}

// tidyLocked moves u to the offline cache once nothing about it is
// pending: no key, no Grace and no Debounce (so u is offline and that was
// announced). p.mu must be held.
func (p *Presence) tidyLocked(u *userState) {
	if len(u.nodes) > 0 || !u.graceAt.IsZero() || !u.debounceAt.IsZero() {
		return
	}
	delete(p.users, u.id)
	if u.known {
		p.rememberOfflineLocked(&offlineUser{id: u.id, lastSeen: u.lastSeen, announcedAt: u.announcedAt})
	}
}

// rememberOfflineLocked caches o, forgetting the longest gone beyond
// MaxLastSeen. p.mu must be held.
func (p *Presence) rememberOfflineLocked(o *offlineUser) {
	p.offline[o.id] = p.gone.PushFront(o)
	for p.gone.Len() > p.maxLastSeen {
		oldest := p.gone.Back()
		delete(p.offline, p.gone.Remove(oldest).(*offlineUser).id)
	}
}
