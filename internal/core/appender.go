package core

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/natter-chat/natter/internal/chat"
)

// appender is the group commit: one goroutine takes every send waiting (up
// to MaxBatch), stores them in one transaction, then acknowledges them and
// publishes their events, in order. Throughput grows with concurrency while
// the latency of a send stays about one commit.
//
// Every other write that moves the sync stream (edits, deletes, reactions,
// receipts, membership and title changes) runs on the same goroutine as a
// job, in queue order with the sends. Writes therefore commit, and their
// events are published, in change-position order, so a client that has
// seen an event at position P has seen every earlier one it may see.
type appender struct {
	store   chat.Store
	publish func(context.Context, chat.Event)
	queue   chan appendReq
	max     int
	observe func(int, time.Duration, error)
	stopped chan struct{} // closed when run stops taking new sends; enqueue then fails
	// entering counts enqueue calls between their stopped check and their
	// queue send, so that drain can wait for them and strand none.
	entering atomic.Int64
	// attachments, if set, fills in the attachments of the stored
	// messages that retried sends return (set before run starts).
	attachments func(ctx context.Context, msgs ...*chat.Message)
	// uncertain, if set, is called on the appender goroutine when a write's
	// commit has an unknown outcome (chat.ErrCommitUncertain), before the
	// next write starts.
	uncertain func()
}

type appendReq struct {
	draft    chat.Draft
	origin   int64
	attached []chat.Attachment // claimed for the draft's message
	done     func(SendResult, error)
	job      func(ctx context.Context) // set for a job; draft, origin and done are then unused
}

func newAppender(store chat.Store, publish func(context.Context, chat.Event), opts Options) *appender {
	return &appender{
		store: store, publish: publish, queue: make(chan appendReq, opts.QueueSize),
		max: opts.MaxBatch, observe: opts.Observe, stopped: make(chan struct{}),
	}
}

var errStopping = chat.Unavailable("send", errors.New("the node is shutting down"))

// enqueue queues d; it blocks while the queue is full.
func (a *appender) enqueue(ctx context.Context, d chat.Draft, origin int64, attached []chat.Attachment, done func(SendResult, error)) error {
	a.entering.Add(1)
	defer a.entering.Add(-1)
	select {
	case <-a.stopped:
		return errStopping
	default:
	}
	select {
	case a.queue <- appendReq{draft: d, origin: origin, attached: attached, done: done}:
		return nil
	case <-a.stopped:
		return errStopping
	case <-ctx.Done():
		return chat.Unavailable("send", ctx.Err())
	}
}

// do runs job on the appender goroutine, in queue order with the sends,
// and waits for it. job gets a context that shutdown does not cancel.
func (a *appender) do(ctx context.Context, job func(ctx context.Context)) error {
	done := make(chan struct{})
	a.entering.Add(1)
	select {
	case <-a.stopped:
		a.entering.Add(-1)
		return errStopping
	default:
	}
	select {
	case a.queue <- appendReq{job: func(ctx context.Context) { defer close(done); job(ctx) }}:
		a.entering.Add(-1)
	case <-a.stopped:
		a.entering.Add(-1)
		return errStopping
	case <-ctx.Done():
		a.entering.Add(-1)
		return chat.Unavailable("write", ctx.Err())
	}
	<-done // once queued, a job always runs (drain runs what is queued)
	return nil
}

// run commits batches until ctx is done, then commits what is queued and
// fails any send that arrives later.
func (a *appender) run(ctx context.Context) {
	batch := make([]appendReq, 0, a.max)
	drafts := make([]chat.Draft, 0, a.max)
	var next *appendReq // a job found while filling a batch, run after it
	for {
		if next == nil {
			select {
			case r := <-a.queue:
				next = &r
			case <-ctx.Done():
				close(a.stopped)
				a.drain(batch, drafts)
				return
			}
		}
		batch, drafts, next = a.step(batch, drafts, *next)
	}
}

// step handles first and whatever sends follow it in the queue: a job runs
// alone; sends are batched until the batch is full, the queue is empty or
// a job comes next, which step returns for the following call.
func (a *appender) step(batch []appendReq, drafts []chat.Draft, first appendReq) ([]appendReq, []chat.Draft, *appendReq) {
	if first.job != nil {
		a.runJob(first.job)
		return batch, drafts, nil
	}
	batch = append(batch[:0], first)
	var next *appendReq
fill:
	for len(batch) < a.max {
		select {
		case r := <-a.queue:
			if r.job != nil {
				next = &r
				break fill
			}
			batch = append(batch, r)
		default:
			break fill
		}
	}
	drafts = a.commit(batch, drafts)
	return batch, drafts, next
}

func (a *appender) runJob(job func(ctx context.Context)) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	job(ctx)
}

// drain commits what was queued before the stop; late enqueuers see
// stopped and fail on their own.
func (a *appender) drain(batch []appendReq, drafts []chat.Draft) {
	for {
		select {
		case r := <-a.queue:
			next := &r
			for next != nil {
				batch, drafts, next = a.step(batch, drafts, *next)
			}
		default:
			if a.entering.Load() == 0 && len(a.queue) == 0 {
				return
			}
			time.Sleep(time.Millisecond) // an enqueue is between its check and its send
		}
	}
}

func (a *appender) commit(batch []appendReq, drafts []chat.Draft) []chat.Draft {
	drafts = drafts[:0]
	for _, r := range batch {
		drafts = append(drafts, r.draft)
	}
	// The commit must not be cut short by shutdown: it uses its own context.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	results, err := a.store.AppendMessages(ctx, drafts)
	if a.observe != nil {
		a.observe(len(batch), time.Since(start), err)
	}
	if err != nil {
		if a.uncertain != nil && errors.Is(err, chat.ErrCommitUncertain) {
			a.uncertain()
		}
		for _, r := range batch {
			r.done(SendResult{}, err)
		}
		return drafts
	}
	for i, r := range batch {
		res := results[i]
		if res.Err != nil {
			if chat.IsCode(res.Err, chat.CodeNotFound) {
				res.Err = errNoConversation()
			}
			r.done(SendResult{}, res.Err)
			continue
		}
		if res.Duplicate && a.attachments != nil {
			a.attachments(ctx, &res.Message)
		}
		if !res.Duplicate {
			res.Message.Attachments = r.attached
			m := res.Message
			a.publish(ctx, chat.Event{Kind: chat.EventMessage, Conv: m.Conv, Message: &m, Origin: r.origin})
		}
		r.done(SendResult{Message: res.Message, Duplicate: res.Duplicate}, nil)
	}
	return drafts
}
