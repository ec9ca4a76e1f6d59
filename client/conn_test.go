package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lxzan/gws"
	"github.com/natter-chat/natter/internal/protocol"
)

// fakeWS is a hand-written stand-in for the server's WebSocket endpoint,
// good enough to exercise ref matching, pushes and close handling:
//
//   - a token other than "good" is rejected: "http401" with a JSON error
//     body, "silent" by never sending ready, anything else by closing with
//     4001 after the upgrade;
//   - sends are answered in batches of batch frames, in reverse order,
//     each preceded by a "message" push (as the real server pushes to the
//     sending connection too);
//   - text "fail" gets a rate_limited error frame, text "drop" closes the
//     connection with 4008 without answering;
//   - sync pages through history messages with seq 1..history.
type fakeWS struct {
	batch   int
	history int64

	mu      sync.Mutex
	waiting map[*gws.Conn][]ClientFrame
}

func startFakeWS(t testing.TB, f *fakeWS) *httptest.Server {
	t.Helper()
	f.waiting = make(map[*gws.Conn][]ClientFrame)
	up := gws.NewUpgrader(f, &gws.ServerOption{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/ws" {
			http.NotFound(w, r)
			return
		}
		auth := r.Header.Get("Authorization")
		if auth == "Bearer http401" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":{"code":"token_expired","message":"refresh it"}}`)
			return
		}
		ws, err := up.Upgrade(w, r)
		if err != nil {
			return
		}
		if auth == "Bearer silent" { // upgraded, but never ready
			go ws.ReadLoop()
			return
		}
		if auth != "Bearer good" {
			_ = ws.WriteClose(protocol.CloseUnauthenticated, []byte("no valid token"))
			return
		}
		_ = ws.WriteString(`{"type":"ready","user":"11","session":"22"}`)
		go ws.ReadLoop()
	}))
	t.Cleanup(srv.Close)
	return srv
}

func (f *fakeWS) OnOpen(*gws.Conn)                    {}
func (f *fakeWS) OnPing(ws *gws.Conn, payload []byte) { _ = ws.WritePong(payload) }
func (f *fakeWS) OnPong(*gws.Conn, []byte)            {}
func (f *fakeWS) OnClose(ws *gws.Conn, _ error) {
	f.mu.Lock()
	delete(f.waiting, ws)
	f.mu.Unlock()
}

func (f *fakeWS) OnMessage(ws *gws.Conn, m *gws.Message) {
	defer m.Close()
	var in ClientFrame
	if err := json.Unmarshal(m.Bytes(), &in); err != nil {
		return
	}
	reply := func(v any) {
		b, _ := json.Marshal(v)
		_ = ws.WriteMessage(gws.OpcodeText, b)
	}
	switch in.Type {
	case "ping":
		reply(map[string]any{"type": "pong", "ref": in.Ref})
	case "read":
		reply(map[string]any{"type": "ack", "ref": in.Ref, "conv": in.Conv, "read_seq": in.Seq})
	case "sync":
		var page []Message
		for seq := in.After + 1; seq <= f.history && len(page) < in.Limit; seq++ {
			page = append(page, Message{ID: strconv.FormatInt(1000+seq, 10), Conv: in.Conv, Seq: seq})
		}
		last := in.After + int64(len(page))
		reply(map[string]any{"type": "messages", "ref": in.Ref, "conv": in.Conv, "messages": page, "has_more": last < f.history})
	case "send":
		switch in.Text {
		case "fail":
			reply(map[string]any{"type": "error", "ref": in.Ref, "code": "rate_limited", "message": "slow down", "retry_after": 2})
			return
		case "drop":
			_ = ws.WriteClose(protocol.CloseSlowConsumer, []byte("too slow"))
			return
		}
		f.mu.Lock()
		f.waiting[ws] = append(f.waiting[ws], in)
		var batch []ClientFrame
		if len(f.waiting[ws]) >= f.batch {
			batch = f.waiting[ws]
			delete(f.waiting, ws)
		}
		f.mu.Unlock()
		for i := len(batch) - 1; i >= 0; i-- {
			s := batch[i]
			msg := Message{ID: "m-" + s.ClientID, Conv: s.Conv, Seq: int64(i + 1), Sender: "11", ClientID: s.ClientID, Text: s.Text}
			reply(map[string]any{"type": "message", "message": msg})
			reply(map[string]any{"type": "ack", "ref": s.Ref, "message": msg})
		}
	default:
		reply(map[string]any{"type": "error", "ref": in.Ref, "code": "unknown_type", "message": "unknown frame type"})
	}
}

// connect logs a Client in with token and connects it, closing the Conn
// at the end of the test.
func connect(t testing.TB, srv *httptest.Server, token string, opts ConnOptions) (*Conn, error) {
	t.Helper()
	c := New(srv.URL, Options{})
	c.SetTokens(Tokens{AccessToken: token})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := c.Connect(ctx, opts)
	if err == nil {
		t.Cleanup(func() { conn.Close() })
	}
	return conn, err
}

// waitGoroutines polls until the number of goroutines is back to at most
// n, failing the test after a deadline.
func waitGoroutines(t testing.TB, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines remain, want at most %d:\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestConn_MatchesOutOfOrderAnswersByRef(t *testing.T) {
	const n = 32
	srv := startFakeWS(t, &fakeWS{batch: n})
	var mu sync.Mutex
	var pushed []string
	conn, err := connect(t, srv, "good", ConnOptions{OnEvent: func(f ServerFrame) {
		if m, _ := f.Msg(); f.Type == TypeMessage && m != nil {
			mu.Lock()
			pushed = append(pushed, m.ClientID)
			mu.Unlock()
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if conn.UserID() != "11" || conn.SessionID() != "22" {
		t.Errorf("ready gave user %q session %q, want 11 and 22", conn.UserID(), conn.SessionID())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprintf("k%02d", i)
			m, dup, err := conn.Send(ctx, "7", id, "text "+id)
			if err == nil && (m.ClientID != id || m.Text != "text "+id || dup) {
				err = fmt.Errorf("send %s got %+v duplicate=%v", id, m, dup)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	// Pushes are not answers: each reached OnEvent, and none was taken
	// for an ack. The ack of the last push is read after it, so by now
	// OnEvent has been handed all of them; poll for the dispatcher.
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		got := len(pushed)
		mu.Unlock()
		if got == n || time.Now().After(deadline) {
			if got != n {
				t.Errorf("OnEvent saw %d message pushes, want %d", got, n)
			}
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestConn_RequestsAndErrors(t *testing.T) {
	srv := startFakeWS(t, &fakeWS{batch: 1, history: 1234})
	conn, err := connect(t, srv, "good", ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	t.Run("error frame becomes *Error", func(t *testing.T) {
		_, _, err := conn.Send(ctx, "7", "k", "fail")
		want := &Error{Op: "ws send", Code: "rate_limited", Message: "slow down", RetryAfter: 2 * time.Second}
		var got *Error
		if !errors.As(err, &got) {
			t.Fatalf("err = %v, want *Error", err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("ping gets pong", func(t *testing.T) {
		if err := conn.Ping(ctx); err != nil {
			t.Error(err)
		}
	})
	t.Run("read returns the stored watermark", func(t *testing.T) {
		if got, err := conn.MarkRead(ctx, "7", 41); err != nil || got != 41 {
			t.Errorf("MarkRead = %d, %v; want 41", got, err)
		}
	})
	t.Run("catch up pages until has_more is false", func(t *testing.T) {
		msgs, err := conn.CatchUp(ctx, "7", 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) != 1134 {
			t.Fatalf("CatchUp returned %d messages, want 1134", len(msgs))
		}
		for i, m := range msgs {
			if m.Seq != int64(101+i) {
				t.Fatalf("message %d has seq %d, want %d", i, m.Seq, 101+i)
			}
		}
	})
	t.Run("cancelled wait returns the context error", func(t *testing.T) {
		// With batch 1 the fake answers at once, so use a context that is
		// already done: the request must not be sent at all.
		done, cancel := context.WithCancel(ctx)
		cancel()
		if _, _, err := conn.Send(done, "7", "k", "x"); !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	})
}

func TestConn_DropFailsPendingRequests(t *testing.T) {
	srv := startFakeWS(t, &fakeWS{batch: 100})
	conn, err := connect(t, srv, "good", ConnOptions{OnEvent: func(ServerFrame) {}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	// A request whose context ends stops waiting and is forgotten.
	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancelShort()
	if _, _, err := conn.Send(short, "7", "kt", "held"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("send with an expiring context: err = %v, want DeadlineExceeded", err)
	}

	// These wait for a batch that never fills...
	errs := make(chan error, 3)
	for i := range 3 {
		go func() {
			_, _, err := conn.Send(ctx, "7", fmt.Sprint("k", i), "held")
			errs <- err
		}()
	}
	// ...until the server drops the connection.
	deadline := time.Now().Add(5 * time.Second)
	for {
		conn.mu.Lock()
		n := len(conn.pending)
		conn.mu.Unlock()
		if n == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d requests pending, want 3", n)
		}
		time.Sleep(time.Millisecond)
	}
	if _, _, err := conn.Send(ctx, "7", "kd", "drop"); !errors.Is(err, ErrClosed) {
		t.Errorf("send that triggered the drop: err = %v, want ErrClosed", err)
	}
	for range 3 {
		err := <-errs
		var ce *CloseError
		if !errors.Is(err, ErrClosed) || !errors.As(err, &ce) || ce.Code != CloseSlowConsumer || ce.Reason != "too slow" {
			t.Errorf("pending send: err = %v, want a CloseError with code 4008", err)
		}
	}
	select {
	case <-conn.Done():
	case <-ctx.Done():
		t.Fatal("Done not closed after the server closed the connection")
	}
	if conn.CloseCode() != CloseSlowConsumer {
		t.Errorf("CloseCode = %d, want %d", conn.CloseCode(), CloseSlowConsumer)
	}
	if err := conn.Ping(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Ping after the drop: err = %v, want ErrClosed", err)
	}
}

func TestClient_ConnectRejected(t *testing.T) {
	srv := startFakeWS(t, &fakeWS{batch: 1})
	t.Run("close 4001 after upgrade", func(t *testing.T) {
		_, err := connect(t, srv, "bad", ConnOptions{})
		var ce *CloseError
		if ErrorCode(err) != "unauthenticated" || !errors.As(err, &ce) || ce.Code != CloseUnauthenticated {
			t.Errorf("err = %v, want code unauthenticated and close code 4001", err)
		}
	})
	t.Run("http 401 before upgrade", func(t *testing.T) {
		_, err := connect(t, srv, "http401", ConnOptions{})
		var e *Error
		if !errors.As(err, &e) || e.Status != 401 || e.Code != "token_expired" {
			t.Errorf("err = %v, want a 401 token_expired *Error", err)
		}
	})
	t.Run("no ready frame", func(t *testing.T) {
		c := New(srv.URL, Options{})
		c.SetTokens(Tokens{AccessToken: "silent"})
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		if _, err := c.Connect(ctx, ConnOptions{}); err == nil || time.Since(start) > 2*time.Second {
			t.Errorf("Connect = %v after %s, want an error after about 200ms", err, time.Since(start))
		}
	})
	t.Run("bad local address", func(t *testing.T) {
		if _, err := connect(t, srv, "good", ConnOptions{LocalAddr: "not-an-ip"}); err == nil {
			t.Error("Connect succeeded")
		}
	})
}

func TestConn_CloseStopsEveryGoroutine(t *testing.T) {
	srv := startFakeWS(t, &fakeWS{batch: 1})
	before := runtime.NumGoroutine()
	var conns []*Conn
	for range 5 {
		conn, err := connect(t, srv, "good", ConnOptions{LocalAddr: "127.0.0.1", OnEvent: func(ServerFrame) {}})
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, conn)
	}
	if err := conns[0].Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, c := range conns {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
		<-c.Done()
		if c.CloseCode() != 0 {
			t.Errorf("CloseCode after our own Close = %d, want 0", c.CloseCode())
		}
	}
	waitGoroutines(t, before)
}

func TestConn_CloseFromOnEventDoesNotDeadlock(t *testing.T) {
	srv := startFakeWS(t, &fakeWS{batch: 1})
	var conn *Conn
	ready := make(chan struct{})
	closed := make(chan struct{})
	conn, err := connect(t, srv, "good", ConnOptions{OnEvent: func(f ServerFrame) {
		<-ready
		conn.Close()
		close(closed)
	}})
	if err != nil {
		t.Fatal(err)
	}
	close(ready)
	// The send's "message" push reaches OnEvent, which closes the Conn.
	_, _, _ = conn.Send(context.Background(), "7", "k", "hi")
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close called from OnEvent did not return")
	}
	<-conn.Done()
}
