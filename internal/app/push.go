package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/core"
	"github.com/natter-chat/natter/internal/push"
)

// PushConfig configures push notifications. Web Push is always on (its
// VAPID key is made on first start and kept in the store); APNs and FCM
// are on when their credentials are given. Zero values are documented.
type PushConfig struct {
	Subject  string        // VAPID contact (mailto: or https: URI); empty means mailto:admin@localhost
	Collapse time.Duration // at most one notification per user and conversation this often; zero means 30s

	APNsKeyFile string // the .p8 provider token key; empty turns APNs off
	APNsKeyID   string
	APNsTeamID  string
	APNsTopic   string // the app's bundle id
	APNsURL     string // empty means https://api.push.apple.com

	FCMProject   string // the Firebase project id; empty turns FCM off
	FCMTokenFile string // a service account key (JSON) or a file holding an access token
	FCMURL       string // empty means https://fcm.googleapis.com

	// AllowHTTP (tests only) accepts http:// Web Push endpoints on
	// loopback and lets the senders connect to loopback and private
	// addresses, so that tests can use local fake push services.
	AllowHTTP bool
	// RetryBase is the first retry delay (doubled per attempt); zero
	// means 1s. Tests shorten it.
	RetryBase time.Duration
	// Workers plan and deliver notifications; zero means 4. With one,
	// messages are handled in commit order (tests rely on it).
	Workers int
}

// setupPush builds the push dispatcher and the core's push options. It
// wraps *bus so that every event the core publishes (on this node, after
// its commit) is offered to the dispatcher too: exactly one node, the one
// that stored a message, notifies about it, whatever the mode.
func (a *App) setupPush(ctx context.Context, bus *chat.Bus, reg prometheus.Registerer) (chat.PushStore, core.PushOptions, error) {
	cfg := a.cfg.Push
	store, ok := a.store.(chat.PushStore)
	if !ok {
		return nil, core.PushOptions{}, nil
	}
	candidate, err := push.NewVAPIDKey()
	if err != nil {
		return nil, core.PushOptions{}, fmt.Errorf("VAPID key: %w", err)
	}
	raw, err := store.VAPIDKey(ctx, candidate)
	if err != nil {
		return nil, core.PushOptions{}, fmt.Errorf("VAPID key: %w", err)
	}
	subject := cfg.Subject
	if subject == "" {
		subject = "mailto:admin@localhost"
	}
	vapid, err := push.NewVAPID(raw, subject)
	if err != nil {
		return nil, core.PushOptions{}, fmt.Errorf("the stored VAPID key: %w", err)
	}
	senders := map[chat.PushKind]push.Sender{chat.PushWebPush: push.NewWebPush(vapid, push.WebPushOptions{Client: push.NewClient(cfg.AllowHTTP)})}
	var errs []error
	if cfg.APNsKeyFile != "" {
		s, err := newAPNs(cfg)
		if err != nil {
			errs = append(errs, err)
		} else {
			senders[chat.PushAPNs] = s
		}
	}
	if cfg.FCMProject != "" || cfg.FCMTokenFile != "" {
		s, err := newFCM(cfg)
		if err != nil {
			errs = append(errs, err)
		} else {
			senders[chat.PushFCM] = s
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, core.PushOptions{}, err
	}
	outcomes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "natter_push_notifications_total",
		Help: "Push notification attempts by kind and result (sent, gone, skipped: left, muted or deleted before delivery, retry, failed, unconfigured; dropped: queue full).",
	}, []string{"kind", "result"})
	if err := reg.Register(outcomes); err != nil {
		return nil, core.PushOptions{}, err
	}
	a.notifier = push.New(push.Options{
		Store: a.store, Push: store, Presence: a.presence, Senders: senders,
		Collapse: cfg.Collapse, RetryBase: cfg.RetryBase, Workers: cfg.Workers, Logger: a.log, Jobs: a.jobs,
		Observe: func(kind chat.PushKind, result string) { outcomes.WithLabelValues(string(kind), result).Inc() },
	})
	*bus = notifyingBus{Bus: *bus, notify: a.notifier.Notify}
	notifier := a.notifier
	opts := core.PushOptions{VAPIDPublicKey: vapid.PublicKey(), AllowHTTP: cfg.AllowHTTP}
	for kind := range senders {
		opts.Kinds = append(opts.Kinds, kind)
	}
	return subscribeNoting{PushStore: store, note: notifier.NoteSubscribed}, opts, nil
}

// subscribeNoting tells the dispatcher at once about subscriptions made
// through this node (it otherwise rechecks the store every few seconds).
type subscribeNoting struct {
	chat.PushStore
	note func()
}

func (s subscribeNoting) CreatePushSubscription(ctx context.Context, sub chat.PushSubscription) (chat.PushSubscription, error) {
	out, err := s.PushStore.CreatePushSubscription(ctx, sub)
	if err == nil {
		s.note()
	}
	return out, err
}

func newAPNs(cfg PushConfig) (push.Sender, error) {
	pem, err := os.ReadFile(cfg.APNsKeyFile)
	if err != nil {
		return nil, fmt.Errorf("--apns-key-file: %w", err)
	}
	key, err := push.ParseAPNsKey(pem)
	if err != nil {
		return nil, fmt.Errorf("--apns-key-file: %w", err)
	}
	opts := push.APNsOptions{URL: cfg.APNsURL, Key: key, KeyID: cfg.APNsKeyID, TeamID: cfg.APNsTeamID, Topic: cfg.APNsTopic}
	if cfg.AllowHTTP {
		opts.Client = push.NewClient(true)
	}
	s, err := push.NewAPNs(opts)
	if err != nil {
		return nil, fmt.Errorf("APNs (--apns-key-id, --apns-team-id and --apns-topic are required with --apns-key-file): %w", err)
	}
	return s, nil
}

func newFCM(cfg PushConfig) (push.Sender, error) {
	if cfg.FCMProject == "" || cfg.FCMTokenFile == "" {
		return nil, errors.New("FCM needs both --fcm-project and --fcm-token-file")
	}
	token, err := push.TokenFromFile(cfg.FCMTokenFile, nil, nil)
	if err != nil {
		return nil, err
	}
	opts := push.FCMOptions{URL: cfg.FCMURL, Project: cfg.FCMProject, Token: token}
	if cfg.AllowHTTP {
		opts.Client = push.NewClient(true)
	}
	return push.NewFCM(opts)
}

// runPush runs the dispatcher (if any) until ctx is done.
func (a *App) runPush(ctx context.Context) {
	if a.notifier != nil {
		a.notifier.Run(ctx)
	}
}

// notifyingBus offers every event published on this node to notify, then
// publishes it. notify must not block.
type notifyingBus struct {
	chat.Bus
	notify func(chat.Event)
}

// ReportLoss passes chat.LossReporter through to the wrapped bus.
func (b notifyingBus) ReportLoss() {
	if r, ok := b.Bus.(chat.LossReporter); ok {
		r.ReportLoss()
	}
}

func (b notifyingBus) Publish(ctx context.Context, e chat.Event) error {
	b.notify(e)
	return b.Bus.Publish(ctx, e)
}
