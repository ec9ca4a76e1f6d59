package jobs

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// Queue takes jobs for later. Both methods return once the job is
// accepted (for a durable queue: stored), never waiting for the work.
type Queue interface {
	// Enqueue adds a job of kind with payload. Errors: ErrUnknownKind,
	// ErrFull (in-process queue), or the backend's failure.
	Enqueue(ctx context.Context, kind string, payload []byte) error
	// EnqueueOnce is Enqueue with an idempotency key: a second job of the
	// same kind and key within the duplicate window (two minutes) is
	// dropped, and the call succeeds.
	EnqueueOnce(ctx context.Context, kind, key string, payload []byte) error
}

// Runner is a Queue that also does the work: Handle registers the
// handler of a kind (before Run), and Run consumes jobs until its context
// ends. A node that only enqueues (the api role) never calls Run.
type Runner interface {
	Queue
	Handle(kind string, fn Handler, opts Options)
	Run(ctx context.Context) error
}

// Handler does one job. A nil error acknowledges it; an error retries it
// after a backoff, unless it is Permanent or the attempts are used up, in
// which case the job is dead-lettered. ctx carries the attempt (Attempt)
// and is cancelled when the runner stops.
type Handler func(ctx context.Context, payload []byte) error

// Options configure the jobs of one kind. Zero values are documented.
type Options struct {
	MaxAttempts int           // tries before the dead letter; zero means 5
	BaseBackoff time.Duration // the wait after the first failure, doubled per attempt; zero means 1s
	MaxBackoff  time.Duration // the longest wait; zero means 5m
	Concurrency int           // jobs of this kind done at once per node; zero means 2
}

// Fill returns o with the zero values replaced by their defaults.
func (o Options) Fill() Options {
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 5
	}
	if o.BaseBackoff <= 0 {
		o.BaseBackoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Minute
	}
	o.MaxBackoff = max(o.MaxBackoff, o.BaseBackoff)
	if o.Concurrency <= 0 {
		o.Concurrency = 2
	}
	return o
}

// Backoff is the wait after a failed attempt (1 for the first):
// BaseBackoff doubled per attempt, capped at MaxBackoff, with jitter over
// its upper half so that jobs failing together do not retry together.
// o must be filled.
func (o Options) Backoff(attempt int) time.Duration {
	wait := o.MaxBackoff
	if attempt >= 1 && attempt < 30 {
		wait = min(o.BaseBackoff<<(attempt-1), o.MaxBackoff)
	}
	return wait/2 + rand.N(wait/2+1)
}

// Errors of Enqueue.
var (
	ErrUnknownKind = errors.New("jobs: no handler for this kind")
	ErrFull        = errors.New("jobs: queue full")
)

// Permanent marks err as not worth retrying: the job is dead-lettered at
// once.
func Permanent(err error) error { return &permanentError{err} }

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// RetryAfter asks for the next attempt no sooner than after (a server's
// Retry-After); the backoff applies when it is longer.
func RetryAfter(after time.Duration, err error) error { return &retryAfterError{err, after} }

type retryAfterError struct {
	err   error
	after time.Duration
}

func (e *retryAfterError) Error() string { return e.err.Error() }
func (e *retryAfterError) Unwrap() error { return e.err }

// NextDelay is the wait before the attempt after a failed one: the
// backoff, or the handler's RetryAfter if longer.
func NextDelay(o Options, attempt int, err error) time.Duration {
	wait := o.Backoff(attempt)
	var ra *retryAfterError
	if errors.As(err, &ra) {
		wait = max(wait, min(ra.after, o.MaxBackoff))
	}
	return wait
}

type attemptKey struct{}

// Attempt returns which attempt (1 for the first) and of how many the
// handler is running, from the context its runner gave it; 0, 0 outside
// a handler.
func Attempt(ctx context.Context) (attempt, of int) {
	a, _ := ctx.Value(attemptKey{}).([2]int)
	return a[0], a[1]
}

// WithAttempt returns ctx carrying the attempt for Attempt; for runners.
func WithAttempt(ctx context.Context, attempt, of int) context.Context {
	return context.WithValue(ctx, attemptKey{}, [2]int{attempt, of})
}

// DeadLetter is a job that used up its attempts or failed permanently.
type DeadLetter struct {
	Kind     string
	Payload  []byte
	Attempts int
	Err      string
	At       time.Time
}

// Outcomes Observe is told of.
const (
	ResultDone  = "done"
	ResultRetry = "retry"
	ResultDead  = "dead"
)
