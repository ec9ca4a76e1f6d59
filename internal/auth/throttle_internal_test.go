package auth

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// checkInvariants fails unless t's recency list holds exactly the entries
// of its map, each once, least recent last.
func checkInvariants(tb testing.TB, t *Throttle) {
	tb.Helper()
	t.mu.Lock()
	defer t.mu.Unlock()
	seen := make(map[*throttleEntry]bool)
	var newer time.Time
	for e := t.lru.next; e != &t.lru; e = e.next {
		if seen[e] {
			tb.Fatalf("entry %v is in the list twice", e.key)
		}
		seen[e] = true
		if t.entries[e.key] != e {
			tb.Fatalf("entry %v is in the list but not in the map", e.key)
		}
		if e.next.prev != e {
			tb.Fatalf("entry %v: broken back link", e.key)
		}
		if !newer.IsZero() && e.last.After(newer) {
			tb.Fatalf("entry %v (last %v) is behind an older one (%v)", e.key, e.last, newer)
		}
		newer = e.last
		if e.pending < 0 || e.failures < e.pending {
			tb.Fatalf("entry %v: %d failures, %d pending", e.key, e.failures, e.pending)
		}
	}
	if len(seen) != len(t.entries) {
		tb.Fatalf("list holds %d entries, map %d", len(seen), len(t.entries))
	}
	if len(t.entries) > t.max {
		tb.Fatalf("%d entries, more than MaxEntries (%d)", len(t.entries), t.max)
	}
}

func TestThrottle_randomOperationsKeepInvariants(t *testing.T) {
	now := time.Date(2026, time.April, 1, 0, 0, 0, 0, time.UTC)
	th := NewThrottle(ThrottleOptions{
		Now: func() time.Time { return now }, UserFree: 2, AddrFree: 3,
		Window: time.Minute, MaxEntries: 20,
	})
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20_000 {
		user := fmt.Sprintf("u%d", rng.IntN(30))
		addr := fmt.Sprintf("192.0.2.%d", rng.IntN(15))
		switch rng.IntN(4) {
		case 0:
			th.Check(user, addr)
		case 1:
			if th.Check(user, addr) == 0 {
				th.Fail(user, addr)
			}
		case 2:
			if th.Check(user, addr) == 0 {
				th.Succeed(user, addr)
			}
		case 3:
			th.Fail(user, addr)
		}
		now = now.Add(time.Duration(rng.IntN(2000)) * time.Millisecond)
		checkInvariants(t, th)
	}
}

func TestThrottle_expiredEntriesAreDropped(t *testing.T) {
	now := time.Date(2026, time.April, 1, 0, 0, 0, 0, time.UTC)
	th := NewThrottle(ThrottleOptions{Now: func() time.Time { return now }, Window: time.Minute})
	for i := range 50 {
		th.Fail(fmt.Sprintf("old%d", i), "")
	}
	now = now.Add(time.Minute)
	for i := range 50 {
		th.Fail(fmt.Sprintf("new%d", i), "")
	}
	if got := th.Len(); got != 50 {
		t.Errorf("Len = %d after the first 50 expired and 50 more failed, want 50", got)
	}
	checkInvariants(t, th)
}
