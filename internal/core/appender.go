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
}

type appendReq struct {
	draft  chat.Draft
	origin int64
	done   func(SendResult, error)
}

func newAppender(store chat.Store, publish func(context.Context, chat.Event), opts Options) *appender {
	return &appender{
		store: store, publish: publish, queue: make(chan appendReq, opts.QueueSize),
		max: opts.MaxBatch, observe: opts.Observe, stopped: make(chan struct{}),
	}
}

var errStopping = chat.Unavailable("send", errors.New("the node is shutting down"))

// enqueue queues d; it blocks while the queue is full.
func (a *appender) enqueue(ctx context.Context, d chat.Draft, origin int64, done func(SendResult, error)) error {
	a.entering.Add(1)
	defer a.entering.Add(-1)
	select {
	case <-a.stopped:
		return errStopping
	default:
	}
	select {
	case a.queue <- appendReq{d, origin, done}:
		return nil
	case <-a.stopped:
		return errStopping
	case <-ctx.Done():
		return chat.Unavailable("send", ctx.Err())
	}
}

// run commits batches until ctx is done, then commits what is queued and
// fails any send that arrives later.
func (a *appender) run(ctx context.Context) {
	batch := make([]appendReq, 0, a.max)
	drafts := make([]chat.Draft, 0, a.max)
	for {
		select {
		case r := <-a.queue:
			batch = append(batch[:0], r)
		case <-ctx.Done():
			close(a.stopped)
			a.drain(batch, drafts)
			return
		}
	fill:
		for len(batch) < a.max {
			select {
			case r := <-a.queue:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		drafts = a.commit(batch, drafts)
	}
}

// drain commits what was queued before the stop; late enqueuers see
// stopped and fail on their own.
func (a *appender) drain(batch []appendReq, drafts []chat.Draft) {
	for {
		batch = batch[:0]
	fill:
		for len(batch) < a.max {
			select {
			case r := <-a.queue:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		if len(batch) == 0 {
			if a.entering.Load() == 0 && len(a.queue) == 0 {
				return
			}
			time.Sleep(time.Millisecond) // an enqueue is between its check and its send
			continue
		}
		drafts = a.commit(batch, drafts)
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
		if !res.Duplicate {
			m := res.Message
			a.publish(ctx, chat.Event{Kind: chat.EventMessage, Conv: m.Conv, Message: &m, Origin: r.origin})
		}
		r.done(SendResult{Message: res.Message, Duplicate: res.Duplicate}, nil)
	}
	return drafts
}
