package app

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"

	"github.com/natter-chat/natter/internal/auth"
	"github.com/natter-chat/natter/internal/natstest"
	"github.com/natter-chat/natter/internal/wsapi"
)

// lockedBuffer collects log output written from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}

// A slow consumer on the node's NATS connection freezes the sync cursor
// only when it is the bus's event subscription (<cluster>.>): events may
// then be missing until the bus reports the loss, which also thaws it. A
// slow JetStream watcher (presence, node leases) carries no events, and
// nothing would ever thaw the cursor it froze.
//
// NATS makes real slow consumers here: subscriptions on the node's own
// connection with a pending limit of one message, sent three. The bus's
// own subscription cannot be made slow on demand (its queue holds 65,536
// events and its handler never waits), so a second subscription with the
// same subject stands in for it: the node tells them apart by subject only.
func TestCluster_OnlyASlowEventSubscriptionFreezesTheCursor(t *testing.T) {
	pgURL := os.Getenv("NATTER_TEST_POSTGRES_URL")
	if pgURL == "" {
		t.Skip("cluster tests need PostgreSQL: set NATTER_TEST_POSTGRES_URL, e.g. NATTER_TEST_POSTGRES_URL='postgres://postgres@127.0.0.1:5432/test?sslmode=disable'")
	}
	natsURL := natstest.Start(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	schema, name := "natter_slowfreeze_"+id, "sf_"+id
	t.Cleanup(func() { dropSchema(t, pgURL, schema) }) // runs after the node has stopped

	var logs lockedBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a, err := New(ctx, Config{
		Addr: "127.0.0.1:0", DataDir: t.TempDir(), DrainJitter: 20 * time.Millisecond, ShutdownTimeout: 5 * time.Second,
		Hasher: auth.HasherOptions{Memory: 64, Time: 1}, SendRate: -1, RESTRate: -1, WS: wsapi.Options{FrameRate: 1e6},
		Store: pgURL, StoreSchema: schema, Bus: natsURL, Cluster: name, NodeID: -1,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Listen(); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("node stopped with error: %v", err)
		}
	}()

	c := a.cluster
	frozen := func() bool {
		c.clock.mu.Lock()
		defer c.clock.mu.Unlock()
		return c.clock.isFrozen
	}
	if frozen() {
		t.Fatal("the cursor is frozen before any slow consumer")
	}
	pub, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	// makeSlow subscribes to subject on the node's connection, holding one
	// pending message at most, and sends it three: NATS declares it a slow
	// consumer and calls the node's error handler with it.
	makeSlow := func(subject string) {
		t.Helper()
		sub, err := c.nc.SubscribeSync(subject)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Unsubscribe() })
		if err := sub.SetPendingLimits(1, -1); err != nil {
			t.Fatal(err)
		}
		if err := c.nc.Flush(); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if err := pub.Publish(subject, []byte("x")); err != nil {
				t.Fatal(err)
			}
		}
		if err := pub.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	slowLogs := func() int { return logs.count(`msg="NATS error" err="` + nats.ErrSlowConsumer.Error() + `"`) }

	// Two subscriptions like a JetStream watcher's (an inbox subject). The
	// node's error handler runs for one error after another, so once the
	// second has been logged, the first has been handled in full.
	makeSlow(nats.NewInbox())
	makeSlow(nats.NewInbox())
	pollUntil(t, 20*time.Second, "the node to log both slow consumers", func() bool { return slowLogs() >= 2 })
	if frozen() {
		t.Fatal("a slow subscription that carries no events froze the sync cursor")
	}

	makeSlow(name + ".>")
	pollUntil(t, 20*time.Second, "a slow event subscription to freeze the sync cursor", frozen)
}

// pollUntil polls cond until it holds, failing t after d.
func pollUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", d, what)
		}
		<-time.After(20 * time.Millisecond) // polling interval, not a wait for an event
	}
}

// dropSchema removes a test's PostgreSQL schema.
func dropSchema(t *testing.T, url, schema string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Errorf("dropping schema %s: %v", schema, err)
		return
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`); err != nil {
		t.Errorf("dropping schema %s: %v", schema, err)
	}
}
