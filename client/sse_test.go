package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// fakeSSE is a hand-written stand-in for the server's fallback transport:
//
//   - GET /v1/events with "Bearer good" greets with a ready frame whose
//     lines end in CRLF, then a heartbeat comment, then writes every frame
//     of push; when push is closed it ends the stream. Other tokens get
//     401 token_expired;
//   - POST /v1/frames answers ping with pong, "send" with an ack and a
//     message push split over two data lines, "read" with 401
//     token_expired, never answers "sync", and answers anything else with
//     an unknown_type error frame.
//     It counts the requests that named the stream in X-Natter-Conn.
//   - GET /v1/ws answers 502, as a proxy that does not speak WebSocket.
type fakeSSE struct {
	push  chan string
	named atomic.Int64
	posts atomic.Int64
}

func startFakeSSE(t testing.TB, f *fakeSSE) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/ws":
			http.Error(w, "<html>bad gateway</html>", http.StatusBadGateway)
		case "/v1/events":
			if r.Header.Get("Authorization") != "Bearer good" {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				fmt.Fprint(w, `{"error":{"code":"token_expired","message":"refresh it"}}`)
				return
			}
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, "data: {\"type\":\"ready\",\"user\":\"11\",\r\ndata: \"session\":\"22\",\"conn\":\"33\"}\r\n\r\n: ping\n\n")
			w.(http.Flusher).Flush()
			for {
				select {
				case <-r.Context().Done():
					return
				case frame, ok := <-f.push:
					if !ok {
						return
					}
					fmt.Fprintf(w, "data: %s\n\n", frame)
					w.(http.Flusher).Flush()
				}
			}
		case "/v1/frames":
			f.posts.Add(1)
			if r.Header.Get("X-Natter-Conn") == "33" {
				f.named.Add(1)
			}
			var in ClientFrame
			if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
				http.Error(w, "bad", http.StatusBadRequest)
				return
			}
			reply := func(v any) {
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(v)
			}
			switch in.Type {
			case "ping":
				reply(map[string]any{"type": "pong", "ref": in.Ref})
			case "send":
				msg := Message{ID: "m-" + in.ClientID, Conv: in.Conv, Seq: 1, Sender: "11", ClientID: in.ClientID, Text: in.Text}
				b, _ := json.Marshal(msg)
				f.push <- fmt.Sprintf("{\"type\":\"message\",\ndata: \"message\":%s}", b)
				reply(map[string]any{"type": "ack", "ref": in.Ref, "message": msg})
			case "sync":
				<-r.Context().Done()
			case "read":
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				fmt.Fprint(w, `{"error":{"code":"token_expired","message":"refresh it"}}`)
			default:
				reply(map[string]any{"type": "error", "ref": in.Ref, "code": "unknown_type", "message": "no"})
			}
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestSSE_RequestsAnswersAndPushes(t *testing.T) {
	f := &fakeSSE{push: make(chan string, 16)}
	srv := startFakeSSE(t, f)
	pushed := make(chan ServerFrame, 16)
	conn, err := connect(t, srv, "good", ConnOptions{Transport: TransportSSE, OnEvent: func(f ServerFrame) { pushed <- f }})
	if err != nil {
		t.Fatal(err)
	}
	if conn.Transport() != TransportSSE || conn.UserID() != "11" || conn.SessionID() != "22" {
		t.Fatalf("Transport, UserID, SessionID = %q %q %q; want sse 11 22", conn.Transport(), conn.UserID(), conn.SessionID())
	}
	ctx := context.Background()
	if err := conn.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	msg, _, err := conn.Send(ctx, "7", "k1", "hello")
	if err != nil || msg.ID != "m-k1" {
		t.Fatalf("Send = %+v, %v", msg, err)
	}
	select {
	case p := <-pushed:
		if m, err := p.Msg(); p.Type != TypeMessage || err != nil || m == nil || m.ID != "m-k1" {
			t.Errorf("pushed %+v (%v), want the message split over two data lines", p, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the pushed message never reached OnEvent")
	}
	var e *Error
	if _, err := conn.MarkRead(ctx, "7", 1); !errors.As(err, &e) || e.Status != http.StatusUnauthorized || e.Code != "token_expired" {
		t.Errorf("a request answered 401: %v, want a 401 token_expired *Error", err)
	}
	if err := conn.Typing(ctx, "7", true); ErrorCode(err) != "unknown_type" {
		t.Errorf("a request answered with an error frame: %v, want unknown_type", err)
	}
	if named, posts := f.named.Load(), f.posts.Load(); named != posts {
		t.Errorf("%d of %d requests named the stream in X-Natter-Conn, want all", named, posts)
	}
}

func TestSSE_EndReportsWhatTheServerSaid(t *testing.T) {
	for _, tc := range []struct {
		name  string
		last  string
		code  int
		cause bool
	}{
		{"drain", `{"type":"reconnect","after_ms":5}`, 1001, false},
		{"revoked", `{"type":"error","code":"unauthenticated","message":"session ended"}`, CloseSessionRevoked, false},
		{"no reason", `{"type":"pong","ref":"x"}`, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeSSE{push: make(chan string, 16)}
			srv := startFakeSSE(t, f)
			conn, err := connect(t, srv, "good", ConnOptions{Transport: TransportSSE})
			if err != nil {
				t.Fatal(err)
			}
			f.push <- tc.last
			close(f.push)
			select {
			case <-conn.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("the Conn did not end with its stream")
			}
			if conn.CloseCode() != tc.code {
				t.Errorf("CloseCode = %d (%v), want %d", conn.CloseCode(), conn.Err(), tc.code)
			}
			if !errors.Is(conn.Err(), ErrClosed) || (errors.Unwrap(conn.Err()) != nil) != tc.cause {
				t.Errorf("Err = %v, want ErrClosed, with a cause: %v", conn.Err(), tc.cause)
			}
			if err := conn.Ping(context.Background()); !errors.Is(err, ErrClosed) {
				t.Errorf("Ping after the end = %v, want ErrClosed", err)
			}
		})
	}
}

func TestConnect_AutoFallsBackOnlyWhenItMayHelp(t *testing.T) {
	f := &fakeSSE{push: make(chan string, 16)}
	srv := startFakeSSE(t, f)
	conn, err := connect(t, srv, "good", ConnOptions{})
	if err != nil {
		t.Fatalf("auto connect when /v1/ws answers 502: %v", err)
	}
	if conn.Transport() != TransportSSE {
		t.Errorf("Transport = %q, want sse", conn.Transport())
	}
	// A token refused on the WebSocket is not tried again over SSE.
	ws := startFakeWS(t, &fakeWS{batch: 1})
	_, err = connect(t, ws, "http401", ConnOptions{Transport: TransportAuto})
	var e *Error
	if !errors.As(err, &e) || e.Op != "ws connect" || e.Code != "token_expired" {
		t.Errorf("auto connect with an expired token = %v, want the WebSocket's token_expired", err)
	}
	if _, err := connect(t, srv, "good", ConnOptions{Transport: "carrier-pigeon"}); err == nil {
		t.Error("an unknown transport was accepted")
	}
}

func TestSSE_CloseStopsEveryGoroutine(t *testing.T) {
	f := &fakeSSE{push: make(chan string, 16)}
	srv := startFakeSSE(t, f)
	before := runtime.NumGoroutine()
	var conns []*Conn
	for range 5 {
		conn, err := connect(t, srv, "good", ConnOptions{Transport: TransportSSE, LocalAddr: "127.0.0.1", OnEvent: func(ServerFrame) {}})
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, conn)
	}
	for _, c := range conns {
		if err := c.Ping(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	// A request in flight when Close is called fails with ErrClosed.
	posted := f.posts.Load()
	hung := make(chan error, 1)
	go func() {
		_, _, err := conns[0].Sync(context.Background(), "7", 0, 0) // never answered
		hung <- err
	}()
	for f.posts.Load() == posted {
		time.Sleep(time.Millisecond) // until the server has the request
	}
	for _, c := range conns {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
		<-c.Done()
		if c.CloseCode() != 0 || c.Err() == nil {
			t.Errorf("after our own Close: CloseCode %d, Err %v; want 0 and ErrClosed", c.CloseCode(), c.Err())
		}
	}
	if err := <-hung; !errors.Is(err, ErrClosed) {
		t.Errorf("a request in flight when Close was called: %v, want ErrClosed", err)
	}
	waitGoroutines(t, before)
}
