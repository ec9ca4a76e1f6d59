package app_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/internal/app"
	"github.com/natter-chat/natter/internal/chattest"
	"github.com/natter-chat/natter/internal/natstest"
	"github.com/natter-chat/natter/internal/snowflake"
)

// Cluster tests run real nodes that share a PostgreSQL schema and a NATS
// server. They need NATTER_TEST_POSTGRES_URL; each runs once against an
// embedded nats-server and once more against NATTER_TEST_NATS_URL when
// that is set.

// Presence timing of cluster test nodes: a dead node's users go offline
// clusterPresenceTTL+clusterPresenceGrace after its last refresh.
const (
	clusterPresenceTTL   = 3 * time.Second
	clusterPresenceGrace = 300 * time.Millisecond
)

// cluster is one Natter cluster under test: a fresh PostgreSQL schema and
// a cluster name (subject prefix and bucket names) of its own on one NATS
// server, so that tests sharing either do not meet.
type cluster struct {
	pgURL   string
	schema  string
	natsURL string
	name    string
	log     *slog.Logger // the nodes' warnings and errors, into the test log
}

// postgresURL returns NATTER_TEST_POSTGRES_URL or skips t, saying how to
// run the cluster tests.
func postgresURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("NATTER_TEST_POSTGRES_URL")
	if u == "" {
		t.Skip("cluster tests need PostgreSQL: set NATTER_TEST_POSTGRES_URL, e.g. " +
			"NATTER_TEST_POSTGRES_URL='postgres://postgres@127.0.0.1:5432/test?sslmode=disable' " +
			"(and optionally NATTER_TEST_NATS_URL=nats://127.0.0.1:4222 to also run against that NATS server)")
	}
	return u
}

// eachNATS runs f as a parallel subtest against an embedded nats-server
// with JetStream, and as another against the server at
// NATTER_TEST_NATS_URL (skipped when it is not set).
func eachNATS(t *testing.T, f func(t *testing.T, c *cluster)) {
	pg := postgresURL(t)
	t.Run("embedded", func(t *testing.T) {
		t.Parallel()
		f(t, newCluster(t, pg, natstest.Start(t)))
	})
	t.Run("external", func(t *testing.T) {
		t.Parallel()
		u := os.Getenv("NATTER_TEST_NATS_URL")
		if u == "" {
			t.Skip("NATTER_TEST_NATS_URL is not set; to run against a NATS server with JetStream too, set it, e.g. NATTER_TEST_NATS_URL=nats://127.0.0.1:4222")
		}
		f(t, newCluster(t, pg, u))
	})
}

// newCluster names a fresh schema and cluster, and removes both when t
// ends, after the nodes started later have stopped.
func newCluster(t testing.TB, pgURL, natsURL string) *cluster {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	c := &cluster{pgURL: pgURL, schema: "natter_cluster_" + id, natsURL: natsURL, name: "ct_" + id}
	tl := &testLog{t: t}
	t.Cleanup(tl.stop) // runs after the nodes have stopped
	c.log = slog.New(slog.NewTextHandler(tl, &slog.HandlerOptions{Level: slog.LevelWarn}))
	t.Cleanup(func() {
		// t.Context() is already cancelled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, pgURL)
		if err != nil {
			t.Errorf("dropping schema %s: %v", c.schema, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{c.schema}.Sanitize()+` CASCADE`); err != nil {
			t.Errorf("dropping schema %s: %v", c.schema, err)
		}
	})
	t.Cleanup(func() {
		nc, err := nats.Connect(natsURL)
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
		for _, b := range []string{c.name + "_nodes", c.name + "_presence", c.name + "_presence_lastseen"} {
			if err := js.DeleteKeyValue(ctx, b); err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
				t.Logf("deleting bucket %s: %v", b, err)
			}
		}
	})
	return c
}

// testLog writes log lines into the test log until stop.
type testLog struct {
	t       testing.TB
	mu      sync.Mutex
	stopped bool
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.stopped {
		l.t.Logf("node log: %s", bytes.TrimSpace(p))
	}
	return len(p), nil
}

func (l *testLog) stop() {
	l.mu.Lock()
	l.stopped = true
	l.mu.Unlock()
}

// start runs a cluster node (its own data dir, a leased node id) until t
// ends; mutate, if given, adjusts its config after the cluster settings.
func (c *cluster) start(t testing.TB, mutate ...func(*app.Config)) *node {
	t.Helper()
	base := func(cfg *app.Config) {
		cfg.Store, cfg.StoreSchema = c.pgURL, c.schema
		cfg.Bus, cfg.Cluster = c.natsURL, c.name
		cfg.NodeID = -1
		cfg.Logger = c.log
		cfg.PresenceTTL, cfg.PresenceGrace = clusterPresenceTTL, clusterPresenceGrace
	}
	n := chattest.StartNode(t, "", append([]func(*app.Config){base}, mutate...)...)
	return &node{URL: n.URL, Dir: n.Dir, stop: n.Stop}
}

// storeVia makes a node reach PostgreSQL through p.
func (c *cluster) storeVia(t testing.TB, p *tcpProxy) func(*app.Config) {
	t.Helper()
	u, err := url.Parse(c.pgURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = p.Addr()
	return func(cfg *app.Config) { cfg.Store = u.String() }
}

// busVia makes a node reach NATS through p.
func busVia(p *tcpProxy) func(*app.Config) {
	return func(cfg *app.Config) { cfg.Bus = "nats://" + p.Addr() }
}

// pgHostPort returns the host:port of the PostgreSQL URL, or skips t when
// it names no TCP address (a Unix socket cannot be proxied here).
func (c *cluster) pgHostPort(t testing.TB) string {
	t.Helper()
	u, err := url.Parse(c.pgURL)
	if err != nil || u.Hostname() == "" {
		t.Skipf("NATTER_TEST_POSTGRES_URL names no TCP host to put a proxy in front of")
	}
	if u.Port() == "" {
		return net.JoinHostPort(u.Hostname(), "5432")
	}
	return u.Host
}

// natsHostPort returns the host:port of the cluster's NATS URL.
func (c *cluster) natsHostPort(t testing.TB) string {
	t.Helper()
	u, err := url.Parse(c.natsURL)
	if err != nil || u.Hostname() == "" {
		t.Fatalf("NATS URL %q has no host", c.natsURL)
	}
	if u.Port() == "" {
		return net.JoinHostPort(u.Hostname(), "4222")
	}
	return u.Host
}

// tcpProxy forwards loopback TCP connections to a target, and can cut
// them: a network partition between one node and one backend.
type tcpProxy struct {
	target string
	ln     net.Listener
	wg     sync.WaitGroup

	mu    sync.Mutex
	cut   bool                  // guarded by mu: new connections are closed at once
	conns map[net.Conn]struct{} // guarded by mu: both ends of every forwarded connection
}

// startTCPProxy listens on a loopback port until t ends.
func startTCPProxy(t testing.TB, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{target: target, ln: ln, conns: make(map[net.Conn]struct{})}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		_ = ln.Close()
		p.Cut()
		p.wg.Wait()
	})
	return p
}

// Addr is the proxy's listen address.
func (p *tcpProxy) Addr() string { return p.ln.Addr().String() }

// Cut closes every forwarded connection and makes new ones fail at once
// (accepted, then closed), until Restore.
func (p *tcpProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		_ = c.Close()
	}
	clear(p.conns)
}

// Restore forwards new connections again.
func (p *tcpProxy) Restore() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
}

func (p *tcpProxy) accept() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		cut := p.cut
		p.mu.Unlock()
		if cut {
			_ = in.Close()
			continue
		}
		out, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			_ = in.Close()
			continue
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			_ = in.Close()
			_ = out.Close()
			continue
		}
		p.conns[in], p.conns[out] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Go(func() { p.pipe(out, in) })
		p.wg.Go(func() { p.pipe(in, out) })
	}
}

// pipe copies src to dst until either fails, then closes both.
func (p *tcpProxy) pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	_ = dst.Close()
	_ = src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

// readyz returns the status of GET /readyz on n.
func readyz(t testing.TB, n *node) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.URL+"/readyz", nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /readyz: %v", err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	_ = res.Body.Close()
	return res.StatusCode
}

// eventually polls cond until it holds, failing t after d.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", d, what)
		}
		<-time.After(20 * time.Millisecond) // polling interval, not a wait for an event
	}
}

// login opens another session (device) of c's user on n.
func (n *node) login(t testing.TB, c *client.Client, device string) *client.Client {
	t.Helper()
	me := mustMe(t, c)
	other := client.New(n.URL, client.Options{Device: device})
	if _, err := other.Login(ctxT(t), me.Username, "a long enough passphrase"); err != nil {
		t.Fatalf("login of %s on another node: %v", me.Username, err)
	}
	return other
}

// nodeOfID returns the node id that made a snowflake id (in its decimal
// wire form).
func nodeOfID(t testing.TB, id string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		t.Fatalf("id %q is not a number: %v", id, err)
	}
	return snowflake.Node(n)
}

// liveMessages returns the messages of conv an inbox received, in arrival
// order.
func liveMessages(in *inbox, conv string) []client.Message {
	in.mu.Lock()
	defer in.mu.Unlock()
	var out []client.Message
	for _, m := range in.msgs {
		if m.Conv == conv {
			out = append(out, m)
		}
	}
	return out
}

// awaitMessages waits up to d until in has received n distinct messages
// of conv (by seq), and returns what it received and whether that was
// enough.
func awaitMessages(in *inbox, conv string, n int, d time.Duration) ([]client.Message, bool) {
	deadline := time.Now().Add(d)
	for {
		got := liveMessages(in, conv)
		seen := make(map[int64]bool, len(got))
		for _, m := range got {
			seen[m.Seq] = true
		}
		if len(seen) >= n {
			return got, true
		}
		if time.Now().After(deadline) {
			return got, false
		}
		<-time.After(20 * time.Millisecond) // polling interval, not a wait for an event
	}
}

// waitMessages waits until in has received n distinct messages of conv
// (by seq) and returns what it received, or fails t after d.
func waitMessages(t testing.TB, in *inbox, what, conv string, n int, d time.Duration) []client.Message {
	t.Helper()
	got, ok := awaitMessages(in, conv, n, d)
	if !ok {
		t.Fatalf("not within %v: %s: %d message frames arrived, want %d distinct", d, what, len(got), n)
	}
	return got
}

// describeMissing says which stored messages a listener did not receive
// live (ignoring those sent by users[skip], when skip >= 0).
func describeMissing(got, stored []client.Message, users []string, skip int) string {
	seen := make(map[int64]bool, len(got))
	for _, m := range got {
		seen[m.Seq] = true
	}
	var missing []string
	count := 0
	for _, m := range stored {
		if seen[m.Seq] || (skip >= 0 && m.Sender == users[skip]) {
			continue
		}
		count++
		if len(missing) < 10 {
			missing = append(missing, fmt.Sprintf("seq %d (%s, made by node %d)", m.Seq, m.ClientID, snowflakeNode(m.ID)))
		}
	}
	return fmt.Sprintf("%d message frames, missing %d stored messages, first %v", len(got), count, missing)
}

func snowflakeNode(id string) int64 {
	n, _ := strconv.ParseInt(id, 10, 64)
	return snowflake.Node(n)
}

func historySeqs(n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(i + 1)
	}
	return out
}

// checkLiveOrder reports, on t, duplicates and seqs that went down in
// msgs, which one connection received live for one conversation.
func checkLiveOrder(t testing.TB, who string, msgs []client.Message) {
	t.Helper()
	var last int64
	seen := make(map[int64]bool, len(msgs))
	dups, reorders := 0, 0
	var firstBad string
	for i, m := range msgs {
		switch {
		case seen[m.Seq]:
			dups++
			if firstBad == "" {
				firstBad = "at index " + strconv.Itoa(i) + ": seq " + strconv.FormatInt(m.Seq, 10) + " again"
			}
		case m.Seq < last:
			reorders++
			if firstBad == "" {
				firstBad = "at index " + strconv.Itoa(i) + ": seq " + strconv.FormatInt(m.Seq, 10) + " after " + strconv.FormatInt(last, 10)
			}
		}
		seen[m.Seq] = true
		last = max(last, m.Seq)
	}
	if dups > 0 || reorders > 0 {
		t.Errorf("%s received %d live messages with %d duplicates and %d out of seq order (first %s)", who, len(msgs), dups, reorders, firstBad)
	}
}

// waitFramesWithin waits up to d for a pushed frame matching ok.
func waitFramesWithin(t testing.TB, in *inbox, d time.Duration, what string, ok func(client.ServerFrame) bool) client.ServerFrame {
	t.Helper()
	var found client.ServerFrame
	eventually(t, d, what, func() bool {
		for _, f := range in.frames() {
			if ok(f) {
				found = f
				return true
			}
		}
		return false
	})
	return found
}

// syncStream pages the sync stream from cursor until it is up to date and
// returns the changes and the new cursor.
func syncStream(t testing.TB, conn *client.Conn, cursor int64) ([]client.Change, int64) {
	t.Helper()
	var all []client.Change
	for {
		page, err := conn.Changes(ctxT(t), cursor, 500)
		if err != nil {
			t.Fatalf("sync from %d: %v", cursor, err)
		}
		all = append(all, page.Changes...)
		cursor = page.Cursor
		if !page.HasMore {
			return all, cursor
		}
	}
}

// highestCursor returns the highest sync cursor the pushed frames in an
// inbox carry (the cursor rule of the protocol, 5.7: not their pos).
func highestCursor(in *inbox) int64 {
	var cursor int64
	for _, f := range in.frames() {
		if f.Type != "changes" && f.Type != client.TypeError {
			cursor = max(cursor, f.Cursor)
		}
	}
	return cursor
}

// byClientID indexes messages by client id, failing t on a duplicate.
func byClientID(t testing.TB, msgs []client.Message) map[string]client.Message {
	t.Helper()
	out := make(map[string]client.Message, len(msgs))
	for _, m := range msgs {
		if prev, ok := out[m.ClientID]; ok {
			t.Errorf("%s stored twice, as seq %d and %d", m.ClientID, prev.Seq, m.Seq)
		}
		out[m.ClientID] = m
	}
	return out
}
