package jobs_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/natter-chat/natter/internal/jobs"
)

// run starts r until the test ends.
func run(t *testing.T, r jobs.Runner) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type outcomes struct {
	mu sync.Mutex
	n  map[string]int
}

func (o *outcomes) observe(kind, result string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.n == nil {
		o.n = map[string]int{}
	}
	o.n[result]++
}

func (o *outcomes) get(result string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n[result]
}

func TestMemoryRetriesWithGrowingBackoff(t *testing.T) {
	var o outcomes
	m := jobs.NewMemory(jobs.MemoryOptions{Observe: o.observe})
	var mu sync.Mutex
	var calls []time.Time
	var attempts []int
	m.Handle("k", func(ctx context.Context, p []byte) error {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, time.Now())
		a, of := jobs.Attempt(ctx)
		attempts = append(attempts, a)
		if of != 5 {
			t.Errorf("Attempt says of %d, want 5", of)
		}
		if len(calls) < 3 {
			return errors.New("not yet")
		}
		return nil
	}, jobs.Options{MaxAttempts: 5, BaseBackoff: 40 * time.Millisecond, MaxBackoff: time.Second})
	run(t, m)
	if err := m.Enqueue(t.Context(), "k", []byte("x")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "success", func() bool { return o.get(jobs.ResultDone) == 1 })
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != 3 || attempts[0] != 1 || attempts[2] != 3 {
		t.Fatalf("calls %d attempts %v; want 3 calls, attempts 1..3", len(calls), attempts)
	}
	// Jitter keeps each wait within the upper half of 40ms, then 80ms.
	if d := calls[1].Sub(calls[0]); d < 20*time.Millisecond {
		t.Errorf("first retry after %v, want >= 20ms", d)
	}
	if d := calls[2].Sub(calls[1]); d < 40*time.Millisecond {
		t.Errorf("second retry after %v, want >= 40ms", d)
	}
	if o.get(jobs.ResultRetry) != 2 {
		t.Errorf("retries %d, want 2", o.get(jobs.ResultRetry))
	}
}

func TestMemoryDeadLetters(t *testing.T) {
	t.Run("after MaxAttempts", func(t *testing.T) {
		var o outcomes
		m := jobs.NewMemory(jobs.MemoryOptions{Observe: o.observe, KeepDead: 2})
		var calls atomic.Int32
		m.Handle("k", func(context.Context, []byte) error { calls.Add(1); return errors.New("boom") },
			jobs.Options{MaxAttempts: 3, BaseBackoff: time.Millisecond})
		run(t, m)
		for _, p := range []string{"a", "b", "c"} {
			if err := m.Enqueue(t.Context(), "k", []byte(p)); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, "three dead letters", func() bool { _, n := m.DeadLetters(); return n == 3 })
		dead, _ := m.DeadLetters()
		if len(dead) != 2 || dead[0].Attempts != 3 || dead[0].Err != "boom" || dead[0].Kind != "k" {
			t.Fatalf("dead letters %+v; want the newest 2, 3 attempts each", dead)
		}
		if calls.Load() != 9 || o.get(jobs.ResultDead) != 3 {
			t.Errorf("calls %d dead %d; want 9 and 3", calls.Load(), o.get(jobs.ResultDead))
		}
	})
	t.Run("at once when permanent", func(t *testing.T) {
		m := jobs.NewMemory(jobs.MemoryOptions{})
		var calls atomic.Int32
		m.Handle("k", func(context.Context, []byte) error { calls.Add(1); return jobs.Permanent(errors.New("bad input")) },
			jobs.Options{MaxAttempts: 5, BaseBackoff: time.Millisecond})
		run(t, m)
		_ = m.Enqueue(t.Context(), "k", nil)
		waitFor(t, "the dead letter", func() bool { _, n := m.DeadLetters(); return n == 1 })
		if calls.Load() != 1 {
			t.Errorf("calls %d, want 1", calls.Load())
		}
	})
}

func TestMemoryConcurrencyBound(t *testing.T) {
	m := jobs.NewMemory(jobs.MemoryOptions{})
	var now, peak, done atomic.Int32
	m.Handle("k", func(context.Context, []byte) error {
		n := now.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(5 * time.Millisecond)
		now.Add(-1)
		done.Add(1)
		return nil
	}, jobs.Options{Concurrency: 3})
	run(t, m)
	for range 30 {
		if err := m.Enqueue(t.Context(), "k", nil); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "all jobs", func() bool { return done.Load() == 30 })
	if p := peak.Load(); p != 3 {
		t.Errorf("peak concurrency %d, want 3", p)
	}
}

func TestMemoryEnqueue(t *testing.T) {
	t.Run("an unknown kind is refused", func(t *testing.T) {
		m := jobs.NewMemory(jobs.MemoryOptions{})
		if err := m.Enqueue(t.Context(), "nope", nil); !errors.Is(err, jobs.ErrUnknownKind) {
			t.Fatalf("err %v, want ErrUnknownKind", err)
		}
	})
	t.Run("a full queue refuses without blocking", func(t *testing.T) {
		m := jobs.NewMemory(jobs.MemoryOptions{QueueSize: 2})
		m.Handle("k", func(context.Context, []byte) error { return nil }, jobs.Options{})
		_ = m.Enqueue(t.Context(), "k", nil)
		_ = m.Enqueue(t.Context(), "k", nil)
		if err := m.Enqueue(t.Context(), "k", nil); !errors.Is(err, jobs.ErrFull) {
			t.Fatalf("err %v, want ErrFull", err)
		}
	})
	t.Run("EnqueueOnce drops a repeat within the window", func(t *testing.T) {
		now := time.Unix(1000, 0)
		var clock sync.Mutex
		m := jobs.NewMemory(jobs.MemoryOptions{DedupWindow: time.Minute, Now: func() time.Time { clock.Lock(); defer clock.Unlock(); return now }})
		var calls atomic.Int32
		m.Handle("k", func(context.Context, []byte) error { calls.Add(1); return nil }, jobs.Options{})
		for range 3 {
			if err := m.EnqueueOnce(t.Context(), "k", "id1", nil); err != nil {
				t.Fatal(err)
			}
		}
		_ = m.EnqueueOnce(t.Context(), "k", "id2", nil)
		clock.Lock()
		now = now.Add(2 * time.Minute)
		clock.Unlock()
		_ = m.EnqueueOnce(t.Context(), "k", "id1", nil)
		run(t, m)
		waitFor(t, "the jobs", func() bool { return calls.Load() >= 3 })
		time.Sleep(20 * time.Millisecond)
		if calls.Load() != 3 {
			t.Errorf("calls %d, want 3 (id1, id2, id1 after the window)", calls.Load())
		}
	})
}

func TestBackoff(t *testing.T) {
	o := jobs.Options{BaseBackoff: time.Second, MaxBackoff: 10 * time.Second}.Fill()
	for attempt, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 5: 10 * time.Second, 40: 10 * time.Second} {
		for range 20 {
			if got := o.Backoff(attempt); got < want/2 || got > want {
				t.Fatalf("Backoff(%d) = %v, want within [%v, %v]", attempt, got, want/2, want)
			}
		}
	}
	if got := jobs.NextDelay(o, 1, jobs.RetryAfter(8*time.Second, errors.New("429"))); got != 8*time.Second {
		t.Errorf("NextDelay with Retry-After 8s = %v, want 8s", got)
	}
}
