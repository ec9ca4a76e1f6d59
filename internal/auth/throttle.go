package auth

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// ThrottleOptions configures a Throttle.
type ThrottleOptions struct {
	Now        func() time.Time // the clock; nil means time.Now
	UserFree   int              // failed attempts per username before delays start; zero means 5
	AddrFree   int              // failed attempts per client address before delays start; zero means 20
	Window     time.Duration    // a key's failures are forgotten this long after its last attempt; zero means 15m
	MaxDelay   time.Duration    // the longest delay; zero means 15m
	MaxEntries int              // usernames and addresses remembered, least recent evicted first; zero means 100000
}

// firstDelay is the delay after the free failures; each further failure
// doubles it, up to MaxDelay.
const firstDelay = time.Second

// maxKeyLen bounds the memory one key takes; longer keys are hashed.
const maxKeyLen = 64

// Throttle slows down password guessing. It counts failed logins per
// username and per client address; once a key has used its free failures
// (UserFree, AddrFree), each further attempt must wait a delay that
// doubles with every failure (1s, 2s, 4s, ... up to MaxDelay) after that
// key's last attempt. A key's failures are forgotten Window after its last
// attempt, and a successful login clears its username's failures (not its
// address's, so one account an attacker owns does not reset the count of
// the address it guesses from).
//
// An attacker who knows a username can therefore delay its owner's logins,
// but never lock them out for good: the delay is at most MaxDelay, the
// owner's next attempt after it can succeed, and success resets the
// count. The per-address count stops one client from guessing across many
// usernames; IPv6 addresses are counted per /64, which one client usually
// controls entirely.
//
// An allowed attempt counts as a failure until Succeed says otherwise, so
// concurrent attempts cannot slip through together: every Check that
// returns 0 must be followed by Fail or Succeed with the same username and
// address (an attempt that is abandoned stays counted as a failure).
//
// A Throttle is safe for concurrent use. Each call takes O(1) time, and
// memory is bounded by MaxEntries: when full, the least recently attempted
// key is forgotten (so a flood of distinct keys can reset old counts early;
// the per-address count limits who can flood).
type Throttle struct {
	now      func() time.Time
	userFree int
	addrFree int
	window   time.Duration
	maxDelay time.Duration
	max      int

	mu      sync.Mutex
	entries map[throttleKey]*throttleEntry // guarded by mu
	lru     throttleEntry                  // guarded by mu; sentinel of a ring, most recent attempt first
}

type throttleKey struct {
	addr bool // false: name is a username; true: a client address
	name string
}

// throttleEntry is one key's record, linked into Throttle.lru.
type throttleEntry struct {
	key        throttleKey
	failures   int       // failed attempts, and attempts under way (see Check)
	pending    int       // attempts allowed by Check and not yet reported
	last       time.Time // the last attempt allowed or failure reported
	prev, next *throttleEntry
}

// NewThrottle returns a Throttle with opts.
func NewThrottle(opts ThrottleOptions) *Throttle {
	t := &Throttle{
		now:      opts.Now,
		userFree: cmp.Or(opts.UserFree, 5),
		addrFree: cmp.Or(opts.AddrFree, 20),
		window:   cmp.Or(opts.Window, 15*time.Minute),
		maxDelay: cmp.Or(opts.MaxDelay, 15*time.Minute),
		max:      max(2, cmp.Or(opts.MaxEntries, 100_000)),
		entries:  make(map[throttleKey]*throttleEntry),
	}
	if t.now == nil {
		t.now = time.Now
	}
	t.lru.prev, t.lru.next = &t.lru, &t.lru
	return t
}

// Check returns 0 when a login attempt for username from addr (the
// client's IP address, with or without a port) may proceed, and reserves
// it: the attempt counts as a failure until Fail or Succeed reports its
// outcome. Otherwise it returns how long the client must wait before
// trying again and reserves nothing; callers answer rate_limited with that
// delay, rounded up to whole seconds. An empty username or addr is not
// counted.
func (t *Throttle) Check(username, addr string) (retryAfter time.Duration) {
	now := t.now()
	uk, ak := userKey(username), addrKey(addr)
	t.mu.Lock()
	defer t.mu.Unlock()
	u, a := t.lookupLocked(uk, now), t.lookupLocked(ak, now)
	wait := max(t.waitLocked(u, t.userFree, now), t.waitLocked(a, t.addrFree, now))
	if wait > 0 {
		return wait
	}
	t.reserveLocked(uk, now)
	t.reserveLocked(ak, now)
	return 0
}

// Fail records a failed login attempt for username from addr.
func (t *Throttle) Fail(username, addr string) {
	now := t.now()
	uk, ak := userKey(username), addrKey(addr)
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range []throttleKey{uk, ak} {
		if k.name == "" {
			continue
		}
		e := t.lookupLocked(k, now)
		if e == nil {
			e = t.insertLocked(k, now)
		}
		if e.pending > 0 {
			e.pending-- // counted by Check already
		} else {
			e.failures++
		}
		e.last = now
		t.touchLocked(e)
	}
}

// Succeed records a successful login for username from addr: it forgets
// the username's failures and the address's reservation for this attempt,
// but not the address's failures.
func (t *Throttle) Succeed(username, addr string) {
	now := t.now()
	uk, ak := userKey(username), addrKey(addr)
	t.mu.Lock()
	defer t.mu.Unlock()
	if u := t.lookupLocked(uk, now); u != nil {
		t.removeLocked(u)
	}
	if a := t.lookupLocked(ak, now); a != nil && a.pending > 0 {
		a.pending--
		a.failures--
		if a.failures == 0 {
			t.removeLocked(a)
		}
	}
}

// Len returns how many usernames and addresses t remembers, at most
// MaxEntries; it is meant for metrics.
func (t *Throttle) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.entries)
}

// waitLocked returns how long e's key must wait before its next attempt.
func (t *Throttle) waitLocked(e *throttleEntry, free int, now time.Time) time.Duration {
	if e == nil || e.failures < free {
		return 0
	}
	delay := t.maxDelay
	if over := e.failures - free; over < 30 {
		delay = min(delay, firstDelay<<over)
	}
	return max(0, e.last.Add(delay).Sub(now))
}

// reserveLocked counts an attempt under way for k.
func (t *Throttle) reserveLocked(k throttleKey, now time.Time) {
	if k.name == "" {
		return
	}
	e := t.entries[k]
	if e == nil {
		e = t.insertLocked(k, now)
	}
	e.failures++
	e.pending++
	e.last = now
	t.touchLocked(e)
}

// lookupLocked returns k's entry, or nil if there is none or its failures
// are older than the window (it then forgets them).
func (t *Throttle) lookupLocked(k throttleKey, now time.Time) *throttleEntry {
	if k.name == "" {
		return nil
	}
	e := t.entries[k]
	if e != nil && now.Sub(e.last) >= t.window {
		t.removeLocked(e)
		return nil
	}
	return e
}

// insertLocked adds an empty entry for k. It first forgets up to two
// expired entries, so that they drain faster than entries are added, and
// then, if the Throttle is still full, the least recent entry.
func (t *Throttle) insertLocked(k throttleKey, now time.Time) *throttleEntry {
	for range 2 {
		if oldest := t.lru.prev; oldest != &t.lru && now.Sub(oldest.last) >= t.window {
			t.removeLocked(oldest)
		}
	}
	if len(t.entries) >= t.max {
		t.removeLocked(t.lru.prev)
	}
	e := &throttleEntry{key: k}
	t.entries[k] = e
	t.pushFrontLocked(e)
	return e
}

// touchLocked moves e to the front of the recency list.
func (t *Throttle) touchLocked(e *throttleEntry) {
	e.prev.next, e.next.prev = e.next, e.prev
	t.pushFrontLocked(e)
}

// pushFrontLocked links e, which is not in the list, at its front.
func (t *Throttle) pushFrontLocked(e *throttleEntry) {
	e.prev, e.next = &t.lru, t.lru.next
	e.prev.next, e.next.prev = e, e
}

func (t *Throttle) removeLocked(e *throttleEntry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
	delete(t.entries, e.key)
}

// userKey is username in lower case, hashed if it is long.
func userKey(username string) throttleKey {
	return throttleKey{name: shortKey(strings.ToLower(username))}
}

// addrKey is the IP address of addr, an IP or IP:port, cut to its /64
// for IPv6; a string that is not an address is used as is.
func addrKey(addr string) throttleKey {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		ap, perr := netip.ParseAddrPort(addr)
		if perr != nil {
			return throttleKey{addr: true, name: shortKey(addr)}
		}
		ip = ap.Addr()
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return throttleKey{addr: true, name: p.String()}
	}
	return throttleKey{addr: true, name: ip.String()}
}

func shortKey(s string) string {
	if len(s) <= maxKeyLen {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}
