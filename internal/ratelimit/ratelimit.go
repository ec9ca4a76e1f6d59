package ratelimit

import (
	"hash/maphash"
	"math"
	"strings"
	"sync"
	"time"
)

// Options configures a Limiter.
type Options struct {
	Rate    float64          // tokens each key gains per second; zero (or less) means unlimited: every call is allowed and no key is tracked
	Burst   int              // tokens a key's bucket holds, which is also the most calls allowed at once; zero means 1
	MaxKeys int              // keys tracked at most, the least recently used forgotten first (per shard, so roughly); zero means 100,000
	Now     func() time.Time // nil means time.Now
}

// Never is the retryAfter of a request that can never be allowed: AllowN
// for more tokens than Burst.
const Never = time.Duration(math.MaxInt64)

// Limiter is a set of token buckets, one per key. It is safe for concurrent
// use. The zero value is not usable; call New.
//
// Each bucket is kept as one instant (the generic cell rate algorithm):
// tat, when the bucket would be full again if no call came, so that all
// arithmetic is exact on integer nanoseconds. A call for n tokens is
// allowed when, after adding n intervals to max(tat, now), tat is at most
// Burst intervals ahead of now.
type Limiter struct {
	interval  time.Duration // the time one token takes to come back
	tolerance time.Duration // Burst intervals: how far ahead of now tat may run
	burst     int
	unlimited bool
	now       func() time.Time
	seed      maphash.Seed
	shards    []shard
}

// shard is a part of the keys, with its own lock and LRU list.
type shard struct {
	mu      sync.Mutex
	buckets map[string]*bucket // guarded by mu
	lru     bucket             // sentinel of the circular LRU list, most recent after it; guarded by mu
	max     int
	_       [64]byte // keep shards' locks on separate cache lines
}

// bucket is one key's tokens; prev and next link it in its shard's LRU
// list.
type bucket struct {
	key        string
	tat        time.Time // the bucket is full from this instant on
	prev, next *bucket
}

// New returns a Limiter configured by opts.
func New(opts Options) *Limiter {
	l := &Limiter{burst: max(opts.Burst, 1), now: opts.Now, seed: maphash.MakeSeed()}
	// Above a billion tokens a second, an interval rounds to zero: no limit.
	// A rate so slow that Burst intervals overflow is raised to the slowest
	// that does not.
	interval := math.Round(float64(time.Second) / opts.Rate)
	l.unlimited = opts.Rate <= 0 || interval < 1
	l.interval = time.Duration(min(interval, float64(math.MaxInt64/4/l.burst)))
	l.tolerance = time.Duration(l.burst) * l.interval
	if l.now == nil {
		l.now = time.Now
	}
	maxKeys := opts.MaxKeys
	if maxKeys <= 0 {
		maxKeys = 100_000
	}
	n := 32 // shards; a power of two, each holding at least 64 keys
	for n > 1 && maxKeys/n < 64 {
		n /= 2
	}
	l.shards = make([]shard, n)
	for i := range l.shards {
		s := &l.shards[i]
		s.buckets = make(map[string]*bucket)
		s.lru.prev, s.lru.next = &s.lru, &s.lru
		s.max = maxKeys / n // so that all shards together hold at most maxKeys
	}
	return l
}

// Allow reports whether key may act now, taking one token if so. When it
// may not, retryAfter is how long until it may (always > 0).
func (l *Limiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	return l.AllowN(key, 1)
}

// AllowN reports whether key may act now at a cost of n tokens, taking them
// if so. When it may not, nothing is taken and retryAfter is how long until
// n tokens are available (always > 0), or Never if n exceeds Burst. n <= 0
// is always allowed.
func (l *Limiter) AllowN(key string, n int) (ok bool, retryAfter time.Duration) {
	if l.unlimited || n <= 0 {
		return true, 0
	}
	if n > l.burst {
		return false, Never
	}
	now := l.now()
	s := &l.shards[maphash.String(l.seed, key)&uint64(len(l.shards)-1)]
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.bucketLocked(key, now)
	tat := b.tat
	if now.After(tat) {
		tat = now // a full bucket: time past tat adds nothing
	}
	tat = tat.Add(time.Duration(n) * l.interval)
	if ahead := tat.Sub(now); ahead > l.tolerance {
		return false, ahead - l.tolerance
	}
	b.tat = tat
	return true, 0
}

// Len returns how many keys are tracked, for metrics and tests.
func (l *Limiter) Len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.buckets)
		s.mu.Unlock()
	}
	return n
}

// bucketLocked returns key's bucket, marked most recently used, creating a
// full one (evicting the least recently used if the shard is full) if key
// is unknown. s.mu must be held.
func (s *shard) bucketLocked(key string, now time.Time) *bucket {
	b := s.buckets[key]
	if b != nil {
		b.unlink()
	} else {
		if len(s.buckets) >= s.max {
			b = s.lru.prev // the least recently used
			b.unlink()
			delete(s.buckets, b.key)
		} else {
			b = new(bucket)
		}
		*b = bucket{key: strings.Clone(key), tat: now}
		s.buckets[b.key] = b
	}
	b.prev, b.next = &s.lru, s.lru.next
	b.next.prev = b
	s.lru.next = b
	return b
}

func (b *bucket) unlink() {
	b.prev.next = b.next
	b.next.prev = b.prev
}
