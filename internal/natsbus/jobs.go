package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/jobs"
)

// JobsOptions configure NewJobs. Zero values are documented.
type JobsOptions struct {
	// Prefix names the streams <Prefix>_jobs and <Prefix>_dlq (and their
	// subjects <Prefix>_jobs.<kind> and <Prefix>_dlq.<kind>); empty means
	// "natter".
	Prefix   string
	Replicas int           // replicas of both streams; zero means 1
	AckWait  time.Duration // a job whose node stops answering is redelivered after this; zero means 30s
	// DuplicateWindow is how long EnqueueOnce keys are remembered; zero
	// means 2m.
	DuplicateWindow time.Duration
	MaxAge          time.Duration // a job nobody took is dropped after this; zero means 24h
	DLQMaxAge       time.Duration // dead letters are kept this long; zero means 7 days
	DLQMaxMsgs      int64         // and at most this many (the oldest go first); zero means 100,000
	Logger          *slog.Logger  // nil means discard
	// Observe, if set, is told every outcome (jobs.ResultDone,
	// ResultRetry, ResultDead) per kind, for metrics.
	Observe func(kind, result string)
}

// Jobs is the jobs.Runner of cluster mode, on JetStream: a stream
// <Prefix>_jobs with work-queue retention and file storage holds the
// jobs, on subject <Prefix>_jobs.<kind>; every node that handles a kind
// pulls from one durable consumer per kind, shared by all nodes, so each
// delivery goes to one node. A job is acknowledged when its handler
// succeeds; a failure is negatively acknowledged with the backoff as the
// delay (jobs.NextDelay of the delivery count); after the last attempt,
// or on a jobs.Permanent error, the job is published to
// <Prefix>_dlq.<kind> (a limits stream) and terminated. A node that dies
// mid-job stops sending progress, and the job is redelivered after
// AckWait.
//
// The subjects are outside <Prefix>.>, where the bus would take them for
// events.
type Jobs struct {
	js    jetstream.JetStream
	opts  JobsOptions
	log   *slog.Logger
	jobs  string // stream names
	dlq   string
	mu    sync.Mutex
	kinds map[string]jsKind
}

type jsKind struct {
	fn   jobs.Handler
	opts jobs.Options
}

var _ jobs.Runner = (*Jobs)(nil)

// NewJobs creates or updates the two streams. It returns an
// unavailable error when JetStream cannot be used.
func NewJobs(ctx context.Context, nc *nats.Conn, opts JobsOptions) (*Jobs, error) {
	if opts.Prefix == "" {
		opts.Prefix = "natter"
	}
	if opts.Replicas <= 0 {
		opts.Replicas = 1
	}
	if opts.AckWait <= 0 {
		opts.AckWait = 30 * time.Second
	}
	if opts.DuplicateWindow <= 0 {
		opts.DuplicateWindow = 2 * time.Minute
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = 24 * time.Hour
	}
	if opts.DLQMaxAge <= 0 {
		opts.DLQMaxAge = 7 * 24 * time.Hour
	}
	if opts.DLQMaxMsgs <= 0 {
		opts.DLQMaxMsgs = 100_000
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Observe == nil {
		opts.Observe = func(string, string) {}
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("natsbus.NewJobs: %w", err)
	}
	j := &Jobs{js: js, opts: opts, log: opts.Logger, jobs: opts.Prefix + "_jobs", dlq: opts.Prefix + "_dlq", kinds: map[string]jsKind{}}
	if err := ensureStream(ctx, js, jetstream.StreamConfig{
		Name: j.jobs, Subjects: []string{j.jobs + ".>"}, Retention: jetstream.WorkQueuePolicy,
		Storage: jetstream.FileStorage, Replicas: opts.Replicas, Duplicates: opts.DuplicateWindow, MaxAge: opts.MaxAge,
		Description: "Natter background jobs (one durable consumer per kind)",
	}); err != nil {
		return nil, chat.Unavailable("natsbus.NewJobs: stream "+j.jobs, err)
	}
	if err := ensureStream(ctx, js, jetstream.StreamConfig{
		Name: j.dlq, Subjects: []string{j.dlq + ".>"}, Retention: jetstream.LimitsPolicy, Discard: jetstream.DiscardOld,
		Storage: jetstream.FileStorage, Replicas: opts.Replicas, MaxAge: opts.DLQMaxAge, MaxMsgs: opts.DLQMaxMsgs,
		Description: "Natter jobs that used up their attempts",
	}); err != nil {
		return nil, chat.Unavailable("natsbus.NewJobs: stream "+j.dlq, err)
	}
	return j, nil
}

// validKind reports whether kind can be one subject token.
func validKind(kind string) bool {
	return kind != "" && !strings.ContainsAny(kind, ".*> \t\r\n")
}

// Handle registers fn for kind; Run then consumes that kind. It panics on
// a kind that cannot be a subject token, or when called twice for one.
func (j *Jobs) Handle(kind string, fn jobs.Handler, opts jobs.Options) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, dup := j.kinds[kind]; dup || !validKind(kind) {
		panic(fmt.Sprintf("natsbus: Handle(%q): invalid or duplicate kind", kind))
	}
	j.kinds[kind] = jsKind{fn: fn, opts: opts.Fill()}
}

// Enqueue publishes a job and waits for JetStream to store it: the job is
// durable once Enqueue returns nil. Any node may enqueue any kind.
func (j *Jobs) Enqueue(ctx context.Context, kind string, payload []byte) error {
	return j.publish(ctx, kind, payload)
}

// EnqueueOnce is Enqueue with the Nats-Msg-Id <kind>.<key>: JetStream
// drops a repeat within DuplicateWindow.
func (j *Jobs) EnqueueOnce(ctx context.Context, kind, key string, payload []byte) error {
	return j.publish(ctx, kind, payload, jetstream.WithMsgID(kind+"."+key))
}

func (j *Jobs) publish(ctx context.Context, kind string, payload []byte, opts ...jetstream.PublishOpt) error {
	if !validKind(kind) {
		return fmt.Errorf("enqueue %q: %w", kind, jobs.ErrUnknownKind)
	}
	if _, err := j.js.Publish(ctx, j.jobs+"."+kind, payload, opts...); err != nil {
		return chat.Unavailable("natsbus: enqueue "+kind, err)
	}
	return nil
}

// Run consumes every handled kind until ctx is done, then returns nil
// once its goroutines have stopped. A consumer that cannot be created
// (NATS unreachable) is retried every few seconds.
func (j *Jobs) Run(ctx context.Context) error {
	j.mu.Lock()
	kinds := make(map[string]jsKind, len(j.kinds))
	for name, k := range j.kinds {
		kinds[name] = k
	}
	j.mu.Unlock()
	var wg sync.WaitGroup
	for name, k := range kinds {
		wg.Go(func() { j.consume(ctx, name, k) })
	}
	wg.Wait()
	return nil
}

// consume runs one kind's consumer: one goroutine pulls, Concurrency
// workers handle.
func (j *Jobs) consume(ctx context.Context, kind string, k jsKind) {
	var cons jetstream.Consumer
	for {
		var err error
		cons, err = j.js.CreateOrUpdateConsumer(ctx, j.jobs, jetstream.ConsumerConfig{
			Durable: "jobs_" + kind, FilterSubject: j.jobs + "." + kind,
			AckPolicy: jetstream.AckExplicitPolicy, AckWait: j.opts.AckWait,
			// One more than the attempts: a delivery after the last one
			// happens only when that attempt's node died or overran
			// AckWait, and it dead-letters the job without running it.
			MaxDeliver:    k.opts.MaxAttempts + 1,
			MaxAckPending: max(k.opts.Concurrency*4, 64),
			Description:   "Natter " + kind + " jobs, shared by every worker",
		})
		if err == nil {
			break
		}
		j.log.Warn("jobs: cannot create the consumer; retrying", "kind", kind, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(k.opts.Concurrency))
	if err != nil {
		j.log.Error("jobs: cannot consume", "kind", kind, "err", err)
		return
	}
	work := make(chan jetstream.Msg)
	var wg sync.WaitGroup
	for range k.opts.Concurrency {
		wg.Go(func() {
			for m := range work {
				j.do(ctx, kind, k, m)
			}
		})
	}
	stopped := make(chan struct{})
	go func() { // ends Next when ctx is done
		select {
		case <-ctx.Done():
			it.Stop()
		case <-stopped:
		}
	}()
	for {
		m, err := it.Next()
		if err != nil {
			if !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				j.log.Error("jobs: consumer stopped", "kind", kind, "err", err)
			}
			break
		}
		select {
		case work <- m:
		case <-ctx.Done():
			_ = m.Nak()
		}
	}
	close(stopped)
	it.Stop()
	close(work)
	wg.Wait()
}

// do runs one delivery of a job and acknowledges its outcome.
func (j *Jobs) do(ctx context.Context, kind string, k jsKind, m jetstream.Msg) {
	attempt := 1
	if md, err := m.Metadata(); err == nil {
		attempt = int(md.NumDelivered)
	}
	if attempt > k.opts.MaxAttempts {
		j.bury(ctx, kind, m, attempt-1, errors.New("the last attempt did not finish (its node stopped or overran the ack wait)"))
		return
	}
	hctx, cancel := context.WithCancel(jobs.WithAttempt(ctx, attempt, k.opts.MaxAttempts))
	progress := make(chan struct{})
	go func() { // keeps the job ours while the handler runs
		defer close(progress)
		t := time.NewTicker(j.opts.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-hctx.Done():
				return
			case <-t.C:
				_ = m.InProgress()
			}
		}
	}()
	err := k.fn(hctx, m.Data())
	cancel()
	<-progress
	switch {
	case err == nil:
		if aerr := m.DoubleAck(ctx); aerr != nil && ctx.Err() == nil {
			j.log.Warn("jobs: ack failed; the job may run again", "kind", kind, "err", aerr)
		}
		j.opts.Observe(kind, jobs.ResultDone)
	case ctx.Err() != nil:
		_ = m.Nak() // stopping: another node takes it
	case jobs.IsPermanent(err) || attempt >= k.opts.MaxAttempts:
		j.bury(ctx, kind, m, attempt, err)
	default:
		_ = m.NakWithDelay(jobs.NextDelay(k.opts, attempt, err))
		j.opts.Observe(kind, jobs.ResultRetry)
	}
}

// bury publishes m to the dead letter stream, with the attempts and the
// last error in headers, and terminates it. A dead letter that cannot be
// stored is logged with the job, which is terminated anyway (jobs are
// hints; the sweeps re-derive what matters).
func (j *Jobs) bury(ctx context.Context, kind string, m jetstream.Msg, attempts int, cause error) {
	j.opts.Observe(kind, jobs.ResultDead)
	dl := nats.NewMsg(j.dlq + "." + kind)
	dl.Data = m.Data()
	dl.Header.Set("Natter-Job-Kind", kind)
	dl.Header.Set("Natter-Job-Attempts", strconv.Itoa(attempts))
	dl.Header.Set("Natter-Job-Error", truncateHeader(cause.Error()))
	dl.Header.Set("Natter-Job-Failed-At", time.Now().UTC().Format(time.RFC3339))
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := j.js.PublishMsg(pctx, dl); err != nil {
		j.log.Error("jobs: cannot store a dead letter; the job is dropped", "kind", kind, "attempts", attempts, "cause", cause, "err", err)
	} else {
		j.log.Warn("job dead-lettered", "kind", kind, "attempts", attempts, "err", cause)
	}
	_ = m.Term()
}

func truncateHeader(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
	if len(s) > 512 {
		s = s[:512]
	}
	return s
}
