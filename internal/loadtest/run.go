package loadtest

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/natter-chat/natter/client"
)

// Result is what a run measured. Run prints it for people and, as its last
// line, as one JSON object for machines. Latencies are in milliseconds.
type Result struct {
	Scenario   string  `json:"scenario"`
	Addr       string  `json:"addr"`
	RunID      string  `json:"run"`
	ElapsedSec float64 `json:"elapsed_s"` // the measured phase

	// sends and fanout
	Sent               int      `json:"sent,omitempty"`  // sends attempted
	Acked              int      `json:"acked,omitempty"` // sends acknowledged (durable)
	Duplicates         int      `json:"duplicates,omitempty"`
	SendsPerSec        float64  `json:"sends_per_s,omitempty"` // Acked / ElapsedSec
	Ack                *Latency `json:"ack_ms,omitempty"`
	Delivery           *Latency `json:"delivery_ms,omitempty"`
	ExpectedDeliveries int64    `json:"expected_deliveries,omitempty"`
	Deliveries         int64    `json:"deliveries,omitempty"`

	// idle
	Conns      int      `json:"conns,omitempty"` // connections that reached ready
	Connect    *Latency `json:"connect_ms,omitempty"`
	RSSBefore  int64    `json:"rss_before_bytes,omitempty"`
	RSSAfter   int64    `json:"rss_after_bytes,omitempty"`
	KiBPerConn float64  `json:"kib_per_conn,omitempty"` // RSS growth per connection
	// HeapStackKiBPerConn is the growth of the Go heap and stacks in use
	// per connection: less noisy than RSS, but blind to memory outside Go.
	HeapStackKiBPerConn float64 `json:"heap_stack_kib_per_conn,omitempty"`
	GoroutinesConn      float64 `json:"goroutines_per_conn,omitempty"`

	// upload
	Uploads       int      `json:"uploads,omitempty"`       // files stored (state ready)
	UploadsTried  int      `json:"uploads_tried,omitempty"` // uploads started
	FileSize      int      `json:"file_size,omitempty"`     // bytes per file
	UploadsPerSec float64  `json:"uploads_per_s,omitempty"` // Uploads / ElapsedSec
	MBPerSec      float64  `json:"mb_per_s,omitempty"`      // file bytes stored per second, in 10^6 bytes
	Upload        *Latency `json:"upload_ms,omitempty"`     // POST …/attachments to the PUT's answer

	Errors   map[string]int `json:"errors,omitempty"`    // failed requests by errorKind
	ConnLost map[string]int `json:"conn_lost,omitempty"` // connections that ended during the run, by close code
}

// Run executes the scenario opts.Scenario against the server at opts.Addr,
// writing progress and the report to out. It returns an error when the
// options are invalid, the setup fails, ctx ends, or nothing at all
// succeeded; failures of individual requests are counted in the report
// instead.
func Run(ctx context.Context, opts Options, out io.Writer) error {
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return fmt.Errorf("load: %w", err)
	}
	r := &run{opts: opts, out: out, id: randomString(lowerAlnum, 6), hc: client.NewHTTPClient()}
	r.password = "Lt-" + randomString(lowerAlnum+"ABCDEFGHJKLMNPQRSTUVWXYZ", 17)
	defer r.hc.CloseIdleConnections()
	r.printf("natter load: scenario %s against %s (run %s)\n", opts.Scenario, opts.Addr, r.id)

	var res *Result
	var err error
	switch opts.Scenario {
	case ScenarioSends:
		res, err = r.sends(ctx)
	case ScenarioFanout:
		res, err = r.fanout(ctx)
	case ScenarioIdle:
		res, err = r.idle(ctx)
	case ScenarioUpload:
		res, err = r.upload(ctx)
	}
	if res != nil { // the measured phase ran: report it, even if it failed
		res.Scenario, res.Addr, res.RunID = opts.Scenario, opts.Addr, r.id
		r.report(*res)
	}
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("load %s: %w", opts.Scenario, err)
	}
	return nil
}

// run is the state shared by the scenarios of one Run.
type run struct {
	opts     Options
	out      io.Writer
	id       string // random run prefix of every username and client id
	password string // of every user of the run
	hc       *http.Client
}

func (r *run) printf(format string, args ...any) { fmt.Fprintf(r.out, format, args...) }

// user is a registered account with its logged-in client.
type user struct {
	c  *client.Client
	id string
}

// register creates n users named lt<run><role><i> with limited
// parallelism, retrying those the server asks to retry (rate_limited,
// unavailable). label names them in the progress output.
func (r *run) register(ctx context.Context, role, label string, n int) ([]user, error) {
	start := time.Now()
	users := make([]user, n)
	err := forEach(ctx, n, r.opts.SetupParallel, func(ctx context.Context, i int) error {
		c := client.New(r.nodeFor(role, i), client.Options{HTTPClient: r.hc, Device: "natter-load"})
		name := fmt.Sprintf("lt%s%s%d", r.id, role, i)
		a, err := retry(ctx, func() (client.AuthResponse, error) { return c.Register(ctx, name, r.password) })
		if err != nil {
			return fmt.Errorf("register %s: %w", name, err)
		}
		users[i] = user{c: c, id: a.User.ID}
		return nil
	})
	if err != nil {
		return nil, err
	}
	r.printf("setup: registered %d %s in %s\n", n, label, time.Since(start).Round(time.Millisecond))
	return users, nil
}

// nodeFor is the base URL user i of role talks to: Addr, or with several
// Nodes round robin, receivers ("r") one node further than their senders.
func (r *run) nodeFor(role string, i int) string {
	n := len(r.opts.Nodes)
	if n < 2 {
		return r.opts.Addr
	}
	if role == "r" {
		i++
	}
	return r.opts.Nodes[i%n]
}

// connect opens one connection per client, with bounded parallelism and
// source addresses taken round robin from LocalAddrs. onEvent, when not
// nil, gives the OnEvent of connection i. Failed connections are nil in
// the result and counted in fails.
func (r *run) connect(ctx context.Context, clients []*client.Client, onEvent func(i int) func(client.ServerFrame), lat *Samples, fails *Tally) []*client.Conn {
	conns := make([]*client.Conn, len(clients))
	_ = forEach(ctx, len(clients), r.opts.ConnectParallel, func(ctx context.Context, i int) error {
		co := client.ConnOptions{Transport: client.TransportWebSocket}
		if n := len(r.opts.LocalAddrs); n > 0 {
			co.LocalAddr = r.opts.LocalAddrs[i%n]
		}
		if onEvent != nil {
			co.OnEvent = onEvent(i)
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		t0 := time.Now()
		conn, err := clients[i].Connect(cctx, co)
		if err != nil {
			if ctx.Err() == nil {
				fails.Add(errorKind(err))
			}
			return nil // keep connecting the others
		}
		if lat != nil {
			lat.Add(time.Since(t0))
		}
		conns[i] = conn
		return nil
	})
	return conns
}

// connectAll is connect for scenarios that need every connection: it
// closes what it opened and fails when one connection could not be made.
func (r *run) connectAll(ctx context.Context, clients []*client.Client, onEvent func(i int) func(client.ServerFrame)) ([]*client.Conn, error) {
	start := time.Now()
	var fails Tally
	conns := r.connect(ctx, clients, onEvent, nil, &fails)
	if err := ctx.Err(); err != nil {
		closeAll(conns)
		return nil, err
	}
	if n := fails.Total(); n > 0 {
		closeAll(conns)
		return nil, fmt.Errorf("%d of %d connections failed: %s", n, len(clients), formatTally(fails.Map()))
	}
	r.printf("setup: opened %d connections in %s\n", len(conns), time.Since(start).Round(time.Millisecond))
	return conns, nil
}

// lost tallies the connections that ended while they should have been
// open, by close code.
func lost(conns []*client.Conn) map[string]int {
	var t Tally
	for _, c := range conns {
		if c == nil {
			continue
		}
		select {
		case <-c.Done():
			t.Add(fmt.Sprintf("code_%d", c.CloseCode()))
		default:
		}
	}
	return t.Map()
}

// closeAll closes the connections in parallel and waits for them.
func closeAll(conns []*client.Conn) {
	_ = forEach(context.Background(), len(conns), 256, func(_ context.Context, i int) error {
		if conns[i] != nil {
			conns[i].Close()
		}
		return nil
	})
}

// forEach calls f(ctx, i) for i in [0, n) with at most parallel calls at
// once, and returns the first error; after an error or when ctx ends, the
// remaining indexes are skipped (calls in progress see a cancelled ctx).
func forEach(ctx context.Context, n, parallel int, f func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(parallel, 1))
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := f(ctx, i); err != nil {
				cancel(err)
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

// retry calls f until it succeeds, fails with an error that a retry will
// not fix, or ctx ends. It waits as long as the server asks.
func retry[T any](ctx context.Context, f func() (T, error)) (T, error) {
	for attempt := 1; ; attempt++ {
		v, err := f()
		code := client.ErrorCode(err)
		if err == nil || attempt == 10 || (code != "rate_limited" && code != "unavailable") {
			return v, err
		}
		wait := time.Duration(attempt) * 200 * time.Millisecond
		var e *client.Error
		if errors.As(err, &e) && e.RetryAfter > 0 {
			wait = e.RetryAfter
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return v, err
		}
	}
}

// report prints res for people, then as one line of JSON.
func (r *run) report(res Result) {
	w := &strings.Builder{}
	line := func(label, format string, args ...any) {
		fmt.Fprintf(w, "  %-20s %s\n", label, fmt.Sprintf(format, args...))
	}
	fmt.Fprintf(w, "results:\n")
	line("measured for", "%.2fs", res.ElapsedSec)
	switch res.Scenario {
	case ScenarioSends, ScenarioFanout:
		line("acked", "%d of %d sent (%d duplicates)", res.Acked, res.Sent, res.Duplicates)
		line("durable sends/s", "%.1f", res.SendsPerSec)
		if res.Ack != nil {
			line("ack latency", "%s", res.Ack)
		}
		if res.Delivery != nil {
			line("delivery latency", "%s", res.Delivery)
		}
		line("deliveries", "%d of %d expected", res.Deliveries, res.ExpectedDeliveries)
	case ScenarioIdle:
		line("connections", "%d ready", res.Conns)
		if res.Connect != nil {
			line("connect latency", "%s", res.Connect)
		}
		if res.RSSAfter > 0 {
			line("server RSS", "%.1f MiB before, %.1f MiB after", float64(res.RSSBefore)/(1<<20), float64(res.RSSAfter)/(1<<20))
			line("memory per conn", "%.1f KiB RSS, %.1f KiB Go heap+stacks", res.KiBPerConn, res.HeapStackKiBPerConn)
			line("goroutines per conn", "%.2f", res.GoroutinesConn)
		} else {
			line("memory per conn", "unknown (no metrics)")
		}
	case ScenarioUpload:
		line("uploads", "%d of %d ready (%d bytes each)", res.Uploads, res.UploadsTried, res.FileSize)
		line("uploads/s", "%.1f", res.UploadsPerSec)
		line("MB/s", "%.1f", res.MBPerSec)
		if res.Upload != nil {
			line("upload latency", "%s", res.Upload)
		}
	}
	line("errors", "%s", formatTally(res.Errors))
	line("connections lost", "%s", formatTally(res.ConnLost))
	b, _ := json.Marshal(res)
	fmt.Fprintf(w, "%s\n", b)
	io.WriteString(r.out, w.String())
}

const lowerAlnum = "abcdefghijklmnopqrstuvwxyz0123456789"

// randomString returns n characters drawn uniformly from alphabet, which
// must be shorter than 256 characters.
func randomString(alphabet string, n int) string {
	out := make([]byte, n)
	buf := make([]byte, 1)
	limit := 256 - 256%len(alphabet) // reject bytes that would bias the draw
	for i := 0; i < n; {
		_, _ = rand.Read(buf)
		if int(buf[0]) >= limit {
			continue
		}
		out[i] = alphabet[int(buf[0])%len(alphabet)]
		i++
	}
	return string(out)
}
