package ratelimit

import (
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// stepClock is a clock that moves only when told.
type stepClock struct {
	mu  sync.Mutex
	now time.Time
}

func newStepClock() *stepClock {
	return &stepClock{now: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// result is one call's answer, for comparing sequences with cmp.
type result struct {
	OK         bool
	RetryAfter time.Duration
}

func allow(l *Limiter, key string) result {
	ok, retry := l.Allow(key)
	return result{ok, retry}
}

func TestLimiter_Allow(t *testing.T) {
	tests := []struct {
		name  string
		opts  Options
		steps []time.Duration // clock advance before each call
		want  []result
	}{
		{
			name:  "burst then refusal with time to the next token",
			opts:  Options{Rate: 2, Burst: 3},
			steps: []time.Duration{0, 0, 0, 0, 100 * time.Millisecond},
			want:  []result{{true, 0}, {true, 0}, {true, 0}, {false, 500 * time.Millisecond}, {false, 400 * time.Millisecond}},
		},
		{
			name:  "waiting exactly retryAfter is enough",
			opts:  Options{Rate: 10, Burst: 1},
			steps: []time.Duration{0, 0, 100 * time.Millisecond, 99 * time.Millisecond, time.Millisecond},
			want:  []result{{true, 0}, {false, 100 * time.Millisecond}, {true, 0}, {false, time.Millisecond}, {true, 0}},
		},
		{
			name:  "refill is capped at burst",
			opts:  Options{Rate: 1, Burst: 2},
			steps: []time.Duration{0, 0, time.Hour, 0, 0},
			want:  []result{{true, 0}, {true, 0}, {true, 0}, {true, 0}, {false, time.Second}},
		},
		{
			name:  "refused calls take nothing",
			opts:  Options{Rate: 1, Burst: 1},
			steps: []time.Duration{0, 0, 0, 0, time.Second},
			want:  []result{{true, 0}, {false, time.Second}, {false, time.Second}, {false, time.Second}, {true, 0}},
		},
		{
			name:  "zero burst means one",
			opts:  Options{Rate: 1},
			steps: []time.Duration{0, 0},
			want:  []result{{true, 0}, {false, time.Second}},
		},
		{
			name:  "slow rate",
			opts:  Options{Rate: 1.0 / 60, Burst: 1},
			steps: []time.Duration{0, 0, 30 * time.Second, 30 * time.Second},
			want:  []result{{true, 0}, {false, time.Minute}, {false, 30 * time.Second}, {true, 0}},
		},
		{
			name:  "zero rate is unlimited",
			opts:  Options{Burst: 1},
			steps: make([]time.Duration, 5),
			want:  []result{{true, 0}, {true, 0}, {true, 0}, {true, 0}, {true, 0}},
		},
		{
			name:  "a clock going backwards adds no tokens",
			opts:  Options{Rate: 1, Burst: 1},
			steps: []time.Duration{0, -time.Hour, time.Hour, time.Second},
			want:  []result{{true, 0}, {false, time.Hour + time.Second}, {false, time.Second}, {true, 0}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newStepClock()
			tt.opts.Now = clock.Now
			l := New(tt.opts)
			var got []result
			for _, d := range tt.steps {
				clock.Advance(d)
				got = append(got, allow(l, "k"))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("results (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLimiter_AllowN(t *testing.T) {
	clock := newStepClock()
	l := New(Options{Rate: 4, Burst: 10, Now: clock.Now})
	var got []result
	for _, n := range []int{0, -1, 6, 5, 4, 11} {
		ok, retry := l.AllowN("k", n)
		got = append(got, result{ok, retry})
	}
	want := []result{
		{true, 0}, {true, 0}, // nothing asked
		{true, 0},                       // 4 left
		{false, 250 * time.Millisecond}, // one token short
		{true, 0},                       // 0 left
		{false, Never},                  // more than Burst: never
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
}

func TestLimiter_KeysAreIndependent(t *testing.T) {
	clock := newStepClock()
	l := New(Options{Rate: 1, Burst: 2, Now: clock.Now})
	for range 2 {
		allow(l, "alice")
	}
	got := []result{allow(l, "alice"), allow(l, "bob"), allow(l, "bob"), allow(l, "bob"), allow(l, "alice")}
	want := []result{{false, time.Second}, {true, 0}, {true, 0}, {false, time.Second}, {false, time.Second}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
}

func TestLimiter_EvictsLeastRecentlyUsed(t *testing.T) {
	clock := newStepClock()
	l := New(Options{Rate: 1, Burst: 1, MaxKeys: 2, Now: clock.Now})
	allow(l, "a")
	allow(l, "b")
	allow(l, "a") // refused, but a is now more recent than b
	allow(l, "c") // evicts b
	got := map[string]result{"a": allow(l, "a"), "c": allow(l, "c")}
	got["b"] = allow(l, "b") // forgotten: a full bucket again (evicts a)
	want := map[string]result{"a": {false, time.Second}, "b": {true, 0}, "c": {false, time.Second}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	if n := l.Len(); n != 2 {
		t.Errorf("Len = %d, want 2", n)
	}
}

func TestLimiter_TracksAtMostMaxKeys(t *testing.T) {
	tests := []struct{ maxKeys, want int }{
		{maxKeys: 1, want: 1},
		{maxKeys: 100, want: 100},
		{maxKeys: 5000, want: 5000 / 32 * 32}, // sharded: each shard holds its part
		{maxKeys: 0, want: 100_000},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.maxKeys), func(t *testing.T) {
			l := New(Options{Rate: 1, Burst: 1, MaxKeys: tt.maxKeys, Now: newStepClock().Now})
			for i := range 2*tt.want + 1000 {
				allow(l, strconv.Itoa(i))
			}
			n := l.Len()
			if n > max(tt.maxKeys, tt.want) || n < tt.want*9/10 {
				t.Errorf("Len = %d after many keys, want at most %d and close to it", n, tt.want)
			}
		})
	}
}

func TestLimiter_UnlimitedTracksNoKeys(t *testing.T) {
	l := New(Options{Burst: 1})
	for i := range 1000 {
		if ok, retry := l.AllowN(strconv.Itoa(i), 1000); !ok || retry != 0 {
			t.Fatalf("AllowN = %v, %v; want allowed", ok, retry)
		}
	}
	if n := l.Len(); n != 0 {
		t.Errorf("Len = %d, want 0", n)
	}
}

func TestLimiter_ConcurrentCallsGetExactlyBurst(t *testing.T) {
	clock := newStepClock()
	const burst, workers, calls = 50, 16, 200
	l := New(Options{Rate: 1, Burst: burst, Now: clock.Now})
	keys := []string{"a", "b", "c", "d"}
	var mu sync.Mutex
	allowed := make(map[string]int)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range calls {
				key := keys[(w+i)%len(keys)]
				ok, retry := l.Allow(key)
				if ok {
					mu.Lock()
					allowed[key]++
					mu.Unlock()
				} else if retry <= 0 {
					t.Errorf("refused with retryAfter %v", retry)
				}
			}
		})
	}
	wg.Wait()
	// The clock never moved: each key had exactly Burst tokens to give.
	want := map[string]int{"a": burst, "b": burst, "c": burst, "d": burst}
	if diff := cmp.Diff(want, allowed); diff != "" {
		t.Errorf("calls allowed per key (-want +got):\n%s", diff)
	}
}

func TestLimiter_ConcurrentEvictionStaysBounded(t *testing.T) {
	const maxKeys = 4096
	l := New(Options{Rate: 1, Burst: 1, MaxKeys: maxKeys})
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := range 2000 {
				l.Allow(strconv.Itoa(w*2000 + i))
				l.Allow("hot")
			}
		})
	}
	wg.Wait()
	if n := l.Len(); n > maxKeys {
		t.Errorf("Len = %d, want at most %d", n, maxKeys)
	}
}

func BenchmarkLimiter_Allow(b *testing.B) {
	l := New(Options{Rate: 1e9, Burst: 1 << 30}) // real clock, never refuses
	l.Allow("user:12345")
	b.ReportAllocs()
	for b.Loop() {
		l.Allow("user:12345")
	}
}

func BenchmarkLimiter_AllowParallel(b *testing.B) {
	l := New(Options{Rate: 1e9, Burst: 1 << 30})
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = "user:" + strconv.Itoa(i)
		l.Allow(keys[i])
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			l.Allow(keys[i%len(keys)])
			i++
		}
	})
}
