package natsbus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/internal/jobs"
)

// newJobs returns a Jobs on its own connection, whose streams the test
// deletes at its end.
func (env *testEnv) newJobs(t *testing.T, nc *nats.Conn, ackWait time.Duration) *Jobs {
	t.Helper()
	if nc == nil {
		nc = env.connect(t)
	}
	j, err := NewJobs(t.Context(), nc, JobsOptions{Prefix: env.prefix, AckWait: ackWait})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = j.js.DeleteStream(ctx, env.prefix+"_jobs")
		_ = j.js.DeleteStream(ctx, env.prefix+"_dlq")
	})
	return j
}

// runJobs runs j until stop is called or the test ends.
func runJobs(t *testing.T, j *Jobs) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = j.Run(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

func eventually(t *testing.T, what string, within time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestJobs(t *testing.T) {
	eachServer(t, false, func(t *testing.T, env *testEnv) {
		t.Run("each job is done once, by one of two workers", func(t *testing.T) {
			api := env.newJobs(t, nil, 0)
			var mu sync.Mutex
			done := map[string][]int{}
			for w := range 2 {
				j := env.newJobs(t, nil, 0)
				j.Handle("k", func(_ context.Context, p []byte) error {
					mu.Lock()
					defer mu.Unlock()
					done[string(p)] = append(done[string(p)], w)
					return nil
				}, jobs.Options{Concurrency: 2})
				runJobs(t, j)
			}
			for i := range 40 {
				if err := api.Enqueue(t.Context(), "k", []byte(strconv.Itoa(i))); err != nil {
					t.Fatal(err)
				}
			}
			eventually(t, "40 jobs", 10*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(done) == 40 })
			time.Sleep(200 * time.Millisecond) // a duplicate would show now
			mu.Lock()
			defer mu.Unlock()
			for p, by := range done {
				if len(by) != 1 {
					t.Errorf("job %s done %d times (by %v)", p, len(by), by)
				}
			}
		})

		t.Run("a job that fails twice gets three deliveries with growing delays", func(t *testing.T) {
			j := env.newJobs(t, nil, 0)
			var mu sync.Mutex
			var at []time.Time
			var attempts []int
			j.Handle("flaky", func(ctx context.Context, _ []byte) error {
				mu.Lock()
				defer mu.Unlock()
				at = append(at, time.Now())
				a, _ := jobs.Attempt(ctx)
				attempts = append(attempts, a)
				if len(at) < 3 {
					return errors.New("not yet")
				}
				return nil
			}, jobs.Options{MaxAttempts: 5, BaseBackoff: 200 * time.Millisecond, MaxBackoff: 5 * time.Second})
			runJobs(t, j)
			if err := j.Enqueue(t.Context(), "flaky", []byte("x")); err != nil {
				t.Fatal(err)
			}
			eventually(t, "three deliveries", 10*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(at) == 3 })
			time.Sleep(500 * time.Millisecond)
			mu.Lock()
			defer mu.Unlock()
			if len(at) != 3 || fmt.Sprint(attempts) != "[1 2 3]" {
				t.Fatalf("deliveries %d, attempts %v; want 3, [1 2 3]", len(at), attempts)
			}
			d1, d2 := at[1].Sub(at[0]), at[2].Sub(at[1])
			if d1 < 100*time.Millisecond || d2 < 200*time.Millisecond {
				t.Errorf("delays %v then %v; want >= 100ms then >= 200ms (half of 200ms and 400ms)", d1, d2)
			}
		})

		t.Run("a job that always fails ends in the dead letter stream", func(t *testing.T) {
			j := env.newJobs(t, nil, 0)
			var calls atomic.Int32
			j.Handle("broken", func(context.Context, []byte) error { calls.Add(1); return errors.New("boom") },
				jobs.Options{MaxAttempts: 3, BaseBackoff: 10 * time.Millisecond})
			runJobs(t, j)
			if err := j.Enqueue(t.Context(), "broken", []byte("payload")); err != nil {
				t.Fatal(err)
			}
			var dead *jetstream.RawStreamMsg
			eventually(t, "the dead letter", 10*time.Second, func() bool {
				m, err := j.js.Stream(t.Context(), env.prefix+"_dlq")
				if err != nil {
					return false
				}
				dead, err = m.GetLastMsgForSubject(t.Context(), env.prefix+"_dlq.broken")
				return err == nil
			})
			if string(dead.Data) != "payload" || dead.Header.Get("Natter-Job-Attempts") != "3" || dead.Header.Get("Natter-Job-Error") != "boom" {
				t.Errorf("dead letter %q with headers %v", dead.Data, dead.Header)
			}
			time.Sleep(200 * time.Millisecond)
			if calls.Load() != 3 {
				t.Errorf("calls %d, want 3", calls.Load())
			}
			s, _ := j.js.Stream(t.Context(), env.prefix+"_jobs")
			if info, err := s.Info(t.Context()); err != nil || info.State.Msgs != 0 {
				t.Errorf("jobs stream holds %d messages (err %v), want 0: a dead job leaves the work queue", info.State.Msgs, err)
			}
		})

		t.Run("a job whose worker dies is redelivered after AckWait", func(t *testing.T) {
			ncA := env.connect(t)
			a := env.newJobs(t, ncA, time.Second)
			started, release := make(chan struct{}, 1), make(chan struct{})
			defer close(release)
			a.Handle("slow", func(context.Context, []byte) error {
				started <- struct{}{}
				<-release // hangs, as a node that froze or died
				return nil
			}, jobs.Options{MaxAttempts: 3, Concurrency: 1})
			stopA := runJobs(t, a)
			if err := a.Enqueue(t.Context(), "slow", []byte("x")); err != nil {
				t.Fatal(err)
			}
			<-started
			ncA.Close() // the node is gone: no ack, no progress
			b := env.newJobs(t, nil, time.Second)
			var got atomic.Int32
			var attempt atomic.Int32
			b.Handle("slow", func(ctx context.Context, _ []byte) error {
				n, _ := jobs.Attempt(ctx)
				attempt.Store(int32(n))
				got.Add(1)
				return nil
			}, jobs.Options{MaxAttempts: 3, Concurrency: 1})
			runJobs(t, b)
			eventually(t, "the redelivery", 10*time.Second, func() bool { return got.Load() == 1 })
			if attempt.Load() != 2 {
				t.Errorf("redelivered as attempt %d, want 2", attempt.Load())
			}
			go stopA() // its handler is released when the test returns
		})

		t.Run("EnqueueOnce with the same key makes one job", func(t *testing.T) {
			j := env.newJobs(t, nil, 0)
			var mu sync.Mutex
			seen := map[string]int{}
			j.Handle("once", func(_ context.Context, p []byte) error {
				mu.Lock()
				defer mu.Unlock()
				seen[string(p)]++
				return nil
			}, jobs.Options{})
			for range 3 {
				if err := j.EnqueueOnce(t.Context(), "once", "att1", []byte("a")); err != nil {
					t.Fatal(err)
				}
			}
			if err := j.EnqueueOnce(t.Context(), "once", "att2", []byte("b")); err != nil {
				t.Fatal(err)
			}
			runJobs(t, j)
			eventually(t, "both jobs", 10*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return seen["a"] == 1 && seen["b"] == 1 })
			time.Sleep(200 * time.Millisecond)
			mu.Lock()
			defer mu.Unlock()
			if seen["a"] != 1 || seen["b"] != 1 {
				t.Errorf("done %v, want each once", seen)
			}
		})
	})
}
