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
	// "gone" (the push service or the store no longer knows the
	// subscription), "skipped" (at delivery the user had left or muted
	// the conversation, or the message was deleted), "retry", "failed",
	// "unconfigured", "dropped" (the delivery could not be queued); and
	// with kind "" the messages "dropped" because the queue was full.
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

// delivery is one notification to one subscription, as queued: ids and
// planning facts only, never keys, tokens, endpoints, names or text.
// Queues and dead letters (kept for days in cluster mode) are readable by
// whoever operates NATS; the worker reads the rest from the store when it
// delivers (GetPushDelivery). Ids are decimal strings, as on the wire, so
// that tools reading dead letters as JSON keep them exact.
type delivery struct {
	Sub      chat.PushSubscriptionID `json:"subscription,string"`
	Kind     chat.PushKind           `json:"kind"` // the subscription's, for counting outcomes when it is gone
	User     chat.UserID             `json:"user,string"`
	Conv     chat.ConversationID     `json:"conv,string"`
	Message  chat.MessageID          `json:"message,string"` // the newest message the notification stands for
	Count    int                     `json:"count"`          // how many it stands for (more than 1 after collapsing)
	HideText bool                    `json:"hide_text,omitempty"`
}

// legacyDelivery is the queued form before deliveries held only ids: it
// carried the whole subscription and the finished payload. Such jobs are
// delivered by their ids alone, like new ones, so that an upgrade loses
// none; their keys and text are ignored.
type legacyDelivery struct {
	Sub *struct {
		ID   chat.PushSubscriptionID
		User chat.UserID
		Kind chat.PushKind
	} `json:"sub"`
	Payload struct {
		Conv      string `json:"conv"`
		Body      string `json:"body"`
		Count     int    `json:"count"`
		MessageID string `json:"message_id"`
	} `json:"payload"`
}

// decodeDelivery parses a JobDeliver payload, new or legacy.
func decodeDelivery(payload []byte) (delivery, error) {
	var dl delivery
	if err := json.Unmarshal(payload, &dl); err != nil {
		return delivery{}, fmt.Errorf("push: a delivery job that is not JSON: %w", err)
	}
	if dl.Sub == 0 {
		var old legacyDelivery
		if err := json.Unmarshal(payload, &old); err == nil && old.Sub != nil {
			conv, _ := chat.ParseID("conv", old.Payload.Conv)
			msg, _ := chat.ParseID("message_id", old.Payload.MessageID)
			dl = delivery{Sub: old.Sub.ID, Kind: old.Sub.Kind, User: old.Sub.User, Conv: chat.ConversationID(conv),
				Message: chat.MessageID(msg), Count: old.Payload.Count, HideText: old.Payload.Body == ""}
		}
	}
	if dl.Sub <= 0 || dl.User <= 0 || dl.Conv <= 0 || dl.Message <= 0 || dl.Count < 1 {
		return delivery{}, errors.New("push: a delivery job without subscription, user, conv, message and count")
	}
	return dl, nil
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

// successRecordInterval is how stale a subscription's LastSuccess may get
// before a delivery records it again.
const successRecordInterval = 10 * time.Minute

// Notify queues e for notification if it is a new message. It never
// blocks: when the queue is full the message is dropped (counted as
// "dropped"). Call it after the message is durably stored, on the node
// that stored it, so that exactly one node notifies.
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
	now := d.opts.Now()
	for _, r := range recipients {
		if r.Level == chat.NotifyNone || r.Level == chat.NotifyMentions && !slices.Contains(m.Mentions, r.User) {
			continue
		}
		if count, send := d.windows.admit(r.User, m, now); send {
			d.send(ctx, r, m, count)
		}
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
			if r.Level != chat.NotifyNone {
				d.send(ctx, r, s.last, s.count)
			}
		}
	}
}

// send queues one delivery per subscription of r, of a notification
// about m standing for count messages. A delivery that cannot be queued
// is counted as "dropped".
func (d *Dispatcher) send(ctx context.Context, r chat.PushRecipient, m chat.Message, count int) {
	for _, sub := range r.Subscriptions {
		body, err := json.Marshal(delivery{Sub: sub.ID, Kind: sub.Kind, User: r.User, Conv: m.Conv, Message: m.ID,
			Count: count, HideText: r.Settings.HideText})
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
// counts. It reads the subscription, the user's standing in the
// conversation and the message from the store first, so that a
// notification never reaches a device its user no longer owns, a user
// who left or muted the conversation, or shows text deleted since. It
// returns an error (so the job is retried or dead-lettered) only for a
// failure worth another attempt or a permanent one.
func (d *Dispatcher) deliverJob(ctx context.Context, payload []byte) error {
	dl, err := decodeDelivery(payload)
	if err != nil {
		return jobs.Permanent(err)
	}
	fresh, err := d.opts.Push.GetPushDelivery(ctx, dl.User, dl.Sub, dl.Conv, dl.Message, d.opts.Now())
	if chat.IsCode(err, chat.CodeNotFound) {
		d.opts.Observe(dl.Kind, "gone") // deleted, moved to another account, or its session ended
		return nil
	}
	if err != nil {
		return d.failed(ctx, dl, &RetryError{Err: err})
	}
	sub := fresh.Subscription
	p, ok := compose(dl, fresh)
	if !ok {
		d.opts.Observe(sub.Kind, "skipped")
		return nil
	}
	sender, ok := d.opts.Senders[sub.Kind]
	if !ok {
		d.opts.Observe(sub.Kind, "unconfigured")
		return nil
	}
	sctx, cancel := context.WithTimeout(ctx, d.opts.SendTimeout)
	err = sender.Send(sctx, sub, p)
	cancel()
	switch {
	case err == nil:
		d.opts.Observe(sub.Kind, "sent")
		// LastSuccess is for people and monitoring, not exact: writing it
		// (a durable commit) on every delivery capped throughput, so it is
		// written when it is older than successRecordInterval.
		if now := d.opts.Now(); now.Sub(sub.LastSuccess) >= successRecordInterval {
			if err := d.opts.Push.MarkPushSuccess(ctx, sub.ID, now); err != nil && ctx.Err() == nil {
				d.log.Warn("push: cannot record a delivery", "user", sub.User, "err", err)
			}
		}
		return nil
	case errors.Is(err, ErrGone):
		d.opts.Observe(sub.Kind, "gone")
		err := d.opts.Push.DeletePushSubscription(ctx, sub.User, sub.ID)
		if err != nil && !chat.IsCode(err, chat.CodeNotFound) && ctx.Err() == nil {
			d.log.Warn("push: cannot delete a gone subscription", "user", sub.User, "err", err)
		} else {
			d.log.Info("push: subscription gone; deleted", "user", sub.User, "kind", sub.Kind)
		}
		return nil
	}
	return d.failed(ctx, dl, err)
}

// failed counts and returns a failed attempt: retried while attempts are
// left and err is a RetryError, dead-lettered otherwise.
func (d *Dispatcher) failed(ctx context.Context, dl delivery, err error) error {
	attempt, of := jobs.Attempt(ctx)
	var re *RetryError
	switch {
	case ctx.Err() != nil:
		return err // stopping; the runner decides
	case errors.As(err, &re) && attempt < of:
		d.opts.Observe(dl.Kind, "retry")
		return jobs.RetryAfter(re.After, err)
	}
	d.opts.Observe(dl.Kind, "failed")
	d.log.Warn("push: notification dropped", "user", dl.User, "kind", dl.Kind, "attempts", attempt, "err", err)
	return jobs.Permanent(err)
}

// compose is the notification dl stands for, as fresh says things are
// now; ok is false when none should go: the user is no longer a member or
// muted the conversation, or the one message it is about was deleted (a
// notification standing for several still goes, without text). A level
// changed to mentions since planning does not recall it.
func compose(dl delivery, fresh chat.PushDelivery) (p Payload, ok bool) {
	m := fresh.Message
	if !fresh.Member || fresh.Level == chat.NotifyNone || m == nil || !m.DeletedAt.IsZero() && dl.Count <= 1 {
		return Payload{}, false
	}
	p = Payload{Conv: dl.Conv.String(), Title: fresh.SenderName, Count: dl.Count, MessageID: m.ID.String()}
	showText := !dl.HideText && !fresh.Settings.HideText && m.DeletedAt.IsZero()
	if showText {
		p.Body = truncate(m.Text, maxBodyBytes)
	}
	if fresh.ConvKind == chat.KindGroup {
		p.Title = fresh.Title
		if p.Title == "" {
			p.Title = "Group"
		}
		if showText {
			p.Body = fresh.SenderName + ": " + p.Body
		}
	}
	return p, true
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
