// Package jobs runs background work off the hot path: thumbnails, push
// deliveries and the like are enqueued by the use-case that needs them
// and done later by a Runner, with retries and a dead letter at the end.
// Memory is the in-process Runner of embedded mode; natsbus.Jobs is the
// JetStream Runner of cluster mode, behind the same API.
//
// Invariants: a handler may run more than once for one job (after a
// crash, a timeout, or an enqueue repeated outside the duplicate window),
// so every handler is idempotent; a job is tried at most
// Options.MaxAttempts times, with exponential backoff and jitter between
// attempts, and is then dead-lettered (kept for inspection, counted,
// logged), never silently dropped; Enqueue never waits for the work.
// Jobs are hints derived from the store, which keeps the truth: work a
// job stands for must be re-derivable (a sweep finds it again) where
// losing it matters.
package jobs
