package natsbus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/internal/natstest"
)

// testEnv is one NATS server as a test sees it, with subject prefix and
// bucket names of its own so that tests sharing a server do not meet.
type testEnv struct {
	url       string
	prefix    string
	bucket    string
	noMarkers bool // behave as on a server without expiry markers
}

// eachServer runs f once per server: an embedded nats-server with
// JetStream (presence suites run it a second time ignoring expiry markers,
// as with servers before 2.11), and the server at NATTER_TEST_NATS_URL if
// set.
func eachServer(t *testing.T, presence bool, f func(t *testing.T, env *testEnv)) {
	t.Run("embedded", func(t *testing.T) {
		f(t, newEnv(t, natstest.Start(t), false))
	})
	if presence {
		t.Run("embedded_without_markers", func(t *testing.T) {
			f(t, newEnv(t, natstest.Start(t), true))
		})
	}
	t.Run("external", func(t *testing.T) {
		url := os.Getenv("NATTER_TEST_NATS_URL")
		if url == "" {
			t.Skip("NATTER_TEST_NATS_URL is not set; to run against a NATS server with JetStream, set it, e.g. NATTER_TEST_NATS_URL=nats://127.0.0.1:4222")
		}
		f(t, newEnv(t, url, false))
	})
}

func newEnv(t *testing.T, url string, noMarkers bool) *testEnv {
	var b [6]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	env := &testEnv{url: url, prefix: "natter_test_" + id, bucket: "natter_test_" + id, noMarkers: noMarkers}
	t.Cleanup(func() {
		nc, err := nats.Connect(url)
		if err != nil {
			return
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = js.DeleteKeyValue(ctx, env.bucket)
		_ = js.DeleteKeyValue(ctx, env.bucket+"_lastseen")
	})
	return env
}

// connect opens a connection that the test closes at its end. Async
// errors are ignored unless opts set a handler.
func (env *testEnv) connect(t *testing.T, opts ...nats.Option) *nats.Conn {
	t.Helper()
	opts = append([]nats.Option{nats.Name(t.Name()), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {})}, opts...)
	nc, err := nats.Connect(env.url, opts...)
	if err != nil {
		t.Fatalf("connect to %s: %v", env.url, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// waitUntil polls cond until it holds or d passes.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ours counts the goroutines that run this package's code (tests aside)
// or deliver a nats.go async subscription (the bucket watch), and returns
// their stacks.
func ours() (int, string) {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n, stacks := 0, ""
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "natsbus.Test") || strings.Contains(g, "natsbus.waitGoroutines") {
			continue
		}
		if strings.Contains(g, "internal/natsbus.") || strings.Contains(g, ".(*Conn).waitForMsgs") {
			n++
			stacks += g + "\n\n"
		}
	}
	return n, stacks
}

// waitGoroutines polls until at most n of ours run.
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, stacks := ours()
		if got <= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines still running, want at most %d:\n%s", got, n, stacks)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
