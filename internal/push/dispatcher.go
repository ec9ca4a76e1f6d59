package push

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/jobs"
)

// Options configure a Dispatcher. Store, Push and Presence are required;
// other zero values are documented per field.
type Options struct {
	Store    chat.Store
	Push     chat.PushStore
	Presence chat.Presence
	// Senders deliver per subscription kind; a kind without a sender is
	// skipped (counted as "unconfigured").
	Senders     map[chat.PushKind]Sender
	Collapse    time.Duration // at most one notification per user and conversation this often; zero means 30s
	Workers     int           // goroutines planning and delivering; zero means 4
	QueueSize   int           // new messages waiting for a worker; zero means 4096 (more are dropped)
	MaxAttempts int           // delivery attempts before a notification is dead-lettered; zero means 5
	RetryBase   time.Duration // first retry delay, doubled per attempt, with jitter; zero means 1s
	RetryMax    time.Duration // longest retry delay; zero means 5m
	SendTimeout time.Duration // one delivery attempt; zero means 15s
	// Jobs carries deliveries (job kind JobDeliver): New registers the
	// handler, the caller runs it (any worker node may deliver). Nil means
	// an in-process runner that Run runs.
	Jobs jobs.Runner
	// FlushEvery is how often windows that folded messages are looked at
	// for their trailing summary; zero means a tenth of Collapse, between
	// 50ms and 1s.
	FlushEvery time.Duration
	Now        func() time.Time // nil means time.Now
	Logger     *slog.Logger     // nil means discard
	// Observe, if set, counts outcomes (for metrics): per kind "sent",
	// "gone", "retry", "failed", "unconfigured", "dropped" (the delivery
	// could not be queued); and with kind "" the messages "dropped"
	// because the queue was full.
	Observe func(kind chat.PushKind, result string)
}

// maxBodyBytes bounds the message text in a notification: the payload
// must fit a 4 KiB push message once encrypted.
const maxBodyBytes = 1000

// Dispatcher turns new messages into notifications for members who are
// away. Create it with New, start it with Run and feed it with Notify.
type Dispatcher struct {
	opts    Options
	log     *slog.Logger
	events  chan chat.Message
	windows *collapser
	jobs    jobs.Runner
	ownJobs bool // jobs is the Dispatcher's own, which Run runs

	subsMu      sync.Mutex
	anySubs     bool      // some user had a subscription when last checked
	subsChecked time.Time // when the store was last asked (zero: never)
}

// How long the answer to "does anyone have a push subscription?" is
// trusted: a server without push users then skips planning entirely
// instead of reading each message's members. A subscription made on this
// node counts at once (NoteSubscribed); one made on another node within
// noSubsRecheck.
const (
	noSubsRecheck  = 2 * time.Second
	anySubsRecheck = 30 * time.Second
)

// NoteSubscribed tells the Dispatcher that a subscription was just made.
func (d *Dispatcher) NoteSubscribed() {
	d.subsMu.Lock()
	d.anySubs, d.subsChecked = true, d.opts.Now()
	d.subsMu.Unlock()
}

// anySubscriptions reports whether planning can find anyone to notify; on
// a store error it says yes (planning then reports the error).
func (d *Dispatcher) anySubscriptions(ctx context.Context) bool {
	now := d.opts.Now()
	d.subsMu.Lock()
	defer d.subsMu.Unlock()
	ttl := noSubsRecheck
	if d.anySubs {
		ttl = anySubsRecheck
	}
	if !d.subsChecked.IsZero() && now.Sub(d.subsChecked) < ttl {
		return d.anySubs
	}
	exists, err := d.opts.Push.HasPushSubscriptions(ctx)
	if err != nil {
		return true
	}
	d.anySubs, d.subsChecked = exists, now
	return exists
}

// JobDeliver is the job kind of one notification to one subscription;
// its payload is a JSON delivery.
const JobDeliver = "push"

// delivery is one notification to one subscription, as queued.
type delivery struct {
	Sub     chat.PushSubscription `json:"sub"`
	Payload Payload               `json:"payload"`
}

// New returns a Dispatcher.
func New(opts Options) *Dispatcher {
	if opts.Collapse <= 0 {
		opts.Collapse = 30 * time.Second
	}
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 4096
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 5
	}
	if opts.RetryBase <= 0 {
		opts.RetryBase = time.Second
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = 5 * time.Minute
	}
	if opts.SendTimeout <= 0 {
		opts.SendTimeout = 15 * time.Second
	}
	if opts.FlushEvery <= 0 {
		opts.FlushEvery = min(max(opts.Collapse/10, 50*time.Millisecond), time.Second)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Observe == nil {
		opts.Observe = func(chat.PushKind, string) {}
	}
	d := &Dispatcher{
		opts: opts, log: opts.Logger,
		events:  make(chan chat.Message, opts.QueueSize),
		windows: newCollapser(opts.Collapse),
		jobs:    opts.Jobs, ownJobs: opts.Jobs == nil,
	}
	if d.ownJobs {
		d.jobs = jobs.NewMemory(jobs.MemoryOptions{QueueSize: opts.QueueSize, Logger: opts.Logger})
	}
	d.jobs.Handle(JobDeliver, d.deliverJob, jobs.Options{
		MaxAttempts: opts.MaxAttempts, BaseBackoff: opts.RetryBase, MaxBackoff: opts.RetryMax, Concurrency: opts.Workers,
	})
	return d
}

// Notify queues e for notification if it is a new message. It never
// blocks: when the queue is full the message is dropped (counted as
// "dropped"). Call it after the message is durably stored, on the node
// that stored it, so that exactly one node notifies.
// successRecordInterval is how stale a subscription's LastSuccess may get
// before a delivery records it again.
const successRecordInterval = 10 * time.Minute

func (d *Dispatcher) Notify(e chat.Event) {
	if e.Kind != chat.EventMessage || e.Message == nil {
		return
	}
	select {
	case d.events <- *e.Message:
	default:
		d.opts.Observe("", "dropped")
	}
}

// Run plans notifications (and, with its own runner, delivers them)
// until ctx is done, then returns once its goroutines have stopped.
// Messages still queued for planning are lost, and so are deliveries in
// an in-process runner.
func (d *Dispatcher) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for range d.opts.Workers {
		wg.Go(func() { d.work(ctx) })
	}
	if d.ownJobs {
		wg.Go(func() { _ = d.jobs.Run(ctx) })
	}
	wg.Go(func() {
		tick := time.NewTicker(d.opts.FlushEvery)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				d.flush(ctx)
			}
		}
	})
	wg.Wait()
}

func (d *Dispatcher) work(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-d.events:
			if err := d.plan(ctx, m); err != nil && ctx.Err() == nil {
				d.log.Warn("push: cannot plan notifications", "conv", m.Conv, "err", err)
			}
		}
	}
}

// plan notifies the members of m's conversation who should hear of it.
func (d *Dispatcher) plan(ctx context.Context, m chat.Message) error {
	if !d.anySubscriptions(ctx) {
		return nil
	}
	members, err := d.opts.Store.ListMembers(ctx, m.Conv)
	if err != nil {
		return err
	}
	users := make([]chat.UserID, 0, len(members))
	for _, mem := range members {
		if mem.User != m.Sender {
			users = append(users, mem.User)
		}
	}
	recipients, err := d.recipients(ctx, m.Conv, users)
	if err != nil {
		return err
	}
	var text *message
	now := d.opts.Now()
	for _, r := range recipients {
		if r.Level == chat.NotifyNone || r.Level == chat.NotifyMentions && !slices.Contains(m.Mentions, r.User) {
			continue
		}
		count, send := d.windows.admit(r.User, m, now)
		if !send {
			continue
		}
		if text == nil {
			if text, err = d.describe(ctx, m); err != nil {
				return err
			}
		}
		d.send(ctx, r, text.payload(count, r.Settings.HideText))
	}
	return nil
}

// recipients returns those of users that are offline or away, with their
// levels, settings and subscriptions.
func (d *Dispatcher) recipients(ctx context.Context, conv chat.ConversationID, users []chat.UserID) ([]chat.PushRecipient, error) {
	if len(users) == 0 {
		return nil, nil
	}
	states, err := d.opts.Presence.Get(ctx, users)
	if err != nil {
		return nil, err
	}
	away := users[:0:0]
	for _, st := range states {
		if st.Status != chat.StatusOnline {
			away = append(away, st.User)
		}
	}
	if len(away) == 0 {
		return nil, nil
	}
	return d.opts.Push.ListPushRecipients(ctx, conv, away, d.opts.Now())
}

// flush sends the trailing summary of every collapse window that ended
// with folded messages, to recipients who are still away and whose level
// still allows it.
func (d *Dispatcher) flush(ctx context.Context) {
	for _, s := range d.windows.due(d.opts.Now()) {
		recipients, err := d.recipients(ctx, s.last.Conv, []chat.UserID{s.user})
		if err != nil {
			d.log.Warn("push: cannot plan a summary", "user", s.user, "conv", s.last.Conv, "err", err)
			continue
		}
		for _, r := range recipients {
			if r.Level == chat.NotifyNone {
				continue
			}
			text, err := d.describe(ctx, s.last)
			if err != nil {
				d.log.Warn("push: cannot plan a summary", "user", s.user, "conv", s.last.Conv, "err", err)
				continue
			}
			d.send(ctx, r, text.payload(s.count, r.Settings.HideText))
		}
	}
}

// send queues one delivery per subscription of r. A delivery that
// cannot be queued is counted as "dropped".
func (d *Dispatcher) send(ctx context.Context, r chat.PushRecipient, p Payload) {
	for _, sub := range r.Subscriptions {
		body, err := json.Marshal(delivery{Sub: sub, Payload: p})
		if err == nil {
			qctx, cancel := context.WithTimeout(ctx, enqueueTimeout)
			err = d.jobs.Enqueue(qctx, JobDeliver, body)
			cancel()
		}
		if err != nil {
			d.opts.Observe(sub.Kind, "dropped")
			if ctx.Err() == nil {
				d.log.Warn("push: cannot queue a notification", "user", sub.User, "kind", sub.Kind, "err", err)
			}
		}
	}
}

// enqueueTimeout bounds how long planning waits to queue a delivery.
const enqueueTimeout = 5 * time.Second

// deliverJob is the JobDeliver handler: one attempt, whose outcome it
// counts. It returns an error (so the job is retried or dead-lettered)
// only for a failure worth another attempt or a permanent one.
func (d *Dispatcher) deliverJob(ctx context.Context, payload []byte) error {
	var dl delivery
	if err := json.Unmarshal(payload, &dl); err != nil {
		return jobs.Permanent(fmt.Errorf("push: a delivery job that is not JSON: %w", err))
	}
	attempt, of := jobs.Attempt(ctx)
	kind := dl.Sub.Kind
	sender, ok := d.opts.Senders[kind]
	if !ok {
		d.opts.Observe(kind, "unconfigured")
		return nil
	}
	sctx, cancel := context.WithTimeout(ctx, d.opts.SendTimeout)
	err := sender.Send(sctx, dl.Sub, dl.Payload)
	cancel()
	var re *RetryError
	switch {
	case err == nil:
		d.opts.Observe(kind, "sent")
		// LastSuccess is for people and monitoring, not exact: writing it
		// (a durable commit) on every delivery capped throughput, so it is
		// written when it is older than successRecordInterval.
		if now := d.opts.Now(); now.Sub(dl.Sub.LastSuccess) >= successRecordInterval {
			if err := d.opts.Push.MarkPushSuccess(ctx, dl.Sub.ID, now); err != nil && ctx.Err() == nil {
				d.log.Warn("push: cannot record a delivery", "user", dl.Sub.User, "err", err)
			}
		}
		return nil
	case errors.Is(err, ErrGone):
		d.opts.Observe(kind, "gone")
		err := d.opts.Push.DeletePushSubscription(ctx, dl.Sub.User, dl.Sub.ID)
		if err != nil && !chat.IsCode(err, chat.CodeNotFound) && ctx.Err() == nil {
			d.log.Warn("push: cannot delete a gone subscription", "user", dl.Sub.User, "err", err)
		} else {
			d.log.Info("push: subscription gone; deleted", "user", dl.Sub.User, "kind", kind)
		}
		return nil
	case ctx.Err() != nil:
		return err // stopping; the runner decides
	case errors.As(err, &re) && attempt < of:
		d.opts.Observe(kind, "retry")
		return jobs.RetryAfter(re.After, err)
	default:
		d.opts.Observe(kind, "failed")
		d.log.Warn("push: notification dropped", "user", dl.Sub.User, "kind", kind, "attempts", attempt, "err", err)
		return jobs.Permanent(err)
	}
}

// message is what a notification about one message says, before the
// count and privacy are applied.
type message struct {
	conv, id    string
	title, body string
}

func (d *Dispatcher) describe(ctx context.Context, m chat.Message) (*message, error) {
	conv, err := d.opts.Store.GetConversation(ctx, m.Conv)
	if err != nil {
		return nil, err
	}
	sender, err := d.opts.Store.GetUser(ctx, m.Sender)
	if err != nil {
		return nil, err
	}
	out := &message{conv: m.Conv.String(), id: m.ID.String(), title: sender.Username, body: truncate(m.Text, maxBodyBytes)}
	if conv.Kind == chat.KindGroup {
		out.title = conv.Title
		if out.title == "" {
			out.title = "Group"
		}
		out.body = sender.Username + ": " + out.body
	}
	return out, nil
}

func (m *message) payload(count int, hideText bool) Payload {
	p := Payload{Conv: m.conv, Title: m.title, Body: m.body, Count: count, MessageID: m.id}
	if hideText {
		p.Body = ""
	}
	return p
}

// truncate cuts s to at most n bytes at a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
