package jobs

import (
	"container/heap"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// MemoryOptions configure a Memory runner. Zero values are documented.
type MemoryOptions struct {
	QueueSize   int              // jobs of one kind waiting for a worker; zero means 1024 (more: ErrFull)
	MaxWaiting  int              // jobs waiting for a retry, all kinds; zero means 10,000 (more are dead-lettered)
	KeepDead    int              // dead letters kept for DeadLetters; zero means 100
	DedupWindow time.Duration    // how long EnqueueOnce remembers a key; zero means 2m
	Now         func() time.Time // dedup windows and dead letter times (retries wait real time); nil means time.Now
	Logger      *slog.Logger     // nil means discard
	// Observe, if set, is told every outcome: ResultDone, ResultRetry or
	// ResultDead, per kind (for metrics).
	Observe func(kind, result string)
}

// Memory is the in-process Runner of embedded mode: one bounded queue
// and Options.Concurrency workers per kind, retries held in a timer heap.
// Nothing survives a restart: what is queued or waiting when Run returns
// is lost (the store's sweeps find such work again).
type Memory struct {
	opts MemoryOptions
	log  *slog.Logger

	mu      sync.Mutex
	kinds   map[string]*memKind
	seen    map[string]time.Time // EnqueueOnce keys until their window ends
	waiting retryHeap
	dead    []DeadLetter // the newest KeepDead, oldest first
	nDead   int
	running bool
	wake    chan struct{} // a retry was added
}

type memKind struct {
	fn   Handler
	opts Options
	ch   chan memJob
}

type memJob struct {
	kind    string
	payload []byte
	attempt int // attempts made before this one
}

// NewMemory returns a Memory runner.
func NewMemory(opts MemoryOptions) *Memory {
	if opts.QueueSize <= 0 {
		opts.QueueSize = 1024
	}
	if opts.MaxWaiting <= 0 {
		opts.MaxWaiting = 10_000
	}
	if opts.KeepDead <= 0 {
		opts.KeepDead = 100
	}
	if opts.DedupWindow <= 0 {
		opts.DedupWindow = 2 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Observe == nil {
		opts.Observe = func(string, string) {}
	}
	return &Memory{opts: opts, log: opts.Logger, kinds: map[string]*memKind{}, seen: map[string]time.Time{}, wake: make(chan struct{}, 1)}
}

var _ Runner = (*Memory)(nil)

// Handle registers fn for kind. It panics when called after Run or
// twice for one kind (a wiring mistake).
func (m *Memory) Handle(kind string, fn Handler, opts Options) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.running || m.kinds[kind] != nil {
		panic(fmt.Sprintf("jobs: Handle(%q) after Run or twice", kind))
	}
	m.kinds[kind] = &memKind{fn: fn, opts: opts.Fill(), ch: make(chan memJob, m.opts.QueueSize)}
}

// Enqueue adds a job; it never blocks. Errors: ErrUnknownKind, ErrFull.
func (m *Memory) Enqueue(ctx context.Context, kind string, payload []byte) error {
	m.mu.Lock()
	k := m.kinds[kind]
	m.mu.Unlock()
	if k == nil {
		return fmt.Errorf("enqueue %s: %w", kind, ErrUnknownKind)
	}
	select {
	case k.ch <- memJob{kind: kind, payload: payload}:
		return nil
	default:
		return fmt.Errorf("enqueue %s: %w", kind, ErrFull)
	}
}

// EnqueueOnce is Enqueue, dropping a repeat of kind and key within
// DedupWindow.
func (m *Memory) EnqueueOnce(ctx context.Context, kind, key string, payload []byte) error {
	now := m.opts.Now()
	id := kind + "\x00" + key
	m.mu.Lock()
	if until, ok := m.seen[id]; ok && now.Before(until) {
		m.mu.Unlock()
		return nil
	}
	if len(m.seen) >= m.opts.QueueSize {
		for k, until := range m.seen {
			if !now.Before(until) {
				delete(m.seen, k)
			}
		}
	}
	m.seen[id] = now.Add(m.opts.DedupWindow)
	m.mu.Unlock()
	err := m.Enqueue(ctx, kind, payload)
	if err != nil {
		m.mu.Lock()
		delete(m.seen, id)
		m.mu.Unlock()
	}
	return err
}

// DeadLetters returns the newest dead letters (up to KeepDead), oldest
// first, and how many jobs died since NewMemory.
func (m *Memory) DeadLetters() ([]DeadLetter, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]DeadLetter, len(m.dead))
	copy(out, m.dead)
	return out, m.nDead
}

// Run works until ctx is done and returns nil once its goroutines have
// stopped. A handler running then sees its context cancelled.
func (m *Memory) Run(ctx context.Context) error {
	m.mu.Lock()
	m.running = true
	kinds := make(map[string]*memKind, len(m.kinds))
	for name, k := range m.kinds {
		kinds[name] = k
	}
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, k := range kinds {
		for range k.opts.Concurrency {
			wg.Go(func() {
				for {
					select {
					case <-ctx.Done():
						return
					case j := <-k.ch:
						m.do(ctx, k, j)
					}
				}
			})
		}
	}
	wg.Go(func() { m.runRetries(ctx, kinds) })
	wg.Wait()
	return nil
}

// do runs one attempt of j and handles its outcome.
func (m *Memory) do(ctx context.Context, k *memKind, j memJob) {
	j.attempt++
	err := k.fn(WithAttempt(ctx, j.attempt, k.opts.MaxAttempts), j.payload)
	switch {
	case err == nil:
		m.opts.Observe(j.kind, ResultDone)
	case ctx.Err() != nil:
		// Stopping: the job is lost with the queue.
	case IsPermanent(err) || j.attempt >= k.opts.MaxAttempts:
		m.bury(j, err)
	default:
		if m.retryLater(j, time.Now().Add(NextDelay(k.opts, j.attempt, err))) { // retries wait real time, whatever Now says
			m.opts.Observe(j.kind, ResultRetry)
		} else {
			m.bury(j, fmt.Errorf("too many jobs waiting for a retry: %w", err))
		}
	}
}

// bury dead-letters j.
func (m *Memory) bury(j memJob, err error) {
	m.opts.Observe(j.kind, ResultDead)
	m.log.Warn("job dead-lettered", "kind", j.kind, "attempts", j.attempt, "err", err)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nDead++
	if len(m.dead) == m.opts.KeepDead {
		m.dead = append(m.dead[:0], m.dead[1:]...)
	}
	m.dead = append(m.dead, DeadLetter{Kind: j.kind, Payload: j.payload, Attempts: j.attempt, Err: err.Error(), At: m.opts.Now()})
}

// retryLater holds j until due; false when too many jobs wait.
func (m *Memory) retryLater(j memJob, due time.Time) bool {
	m.mu.Lock()
	if len(m.waiting) >= m.opts.MaxWaiting {
		m.mu.Unlock()
		return false
	}
	heap.Push(&m.waiting, retry{job: j, due: due})
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
	return true
}

// runRetries hands each waiting job back to its kind's queue when due,
// until ctx is done. A full queue makes it wait (the workers drain it).
func (m *Memory) runRetries(ctx context.Context, kinds map[string]*memKind) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		m.mu.Lock()
		var next *retry
		wait := time.Hour
		if len(m.waiting) > 0 {
			if d := time.Until(m.waiting[0].due); d <= 0 {
				r := heap.Pop(&m.waiting).(retry)
				next = &r
			} else {
				wait = d
			}
		}
		m.mu.Unlock()
		if next != nil {
			select {
			case kinds[next.job.kind].ch <- next.job:
			case <-ctx.Done():
				return
			}
			continue
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-m.wake:
		case <-timer.C:
		}
	}
}

type retry struct {
	job memJob
	due time.Time
}

// retryHeap orders retries by due time; guarded by Memory.mu.
type retryHeap []retry

func (h retryHeap) Len() int           { return len(h) }
func (h retryHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h retryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *retryHeap) Push(x any)        { *h = append(*h, x.(retry)) }
func (h *retryHeap) Pop() any {
	old := *h
	r := old[len(old)-1]
	*h = old[:len(old)-1]
	return r
}
