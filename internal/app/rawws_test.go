package app_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lxzan/gws"

	"github.com/natter-chat/natter/client"
)

// rawWS is a bare WebSocket client on /v1/ws. Unlike the client package it
// sends whatever it is told (malformed, oversized or invalid UTF-8 frames)
// and can stop reading on demand, so tests can play a broken or hostile
// client.
type rawWS struct {
	socket *gws.Conn
	frames chan []byte   // text and binary frames received, in order
	done   chan struct{} // closed when the connection has ended
	hold   chan struct{} // while open, OnMessage does not return (after holdAfter frames)
	once   sync.Once     // closes hold
	seen   int           // frames read; touched by the read loop only
	lost   atomic.Int64  // frames dropped because frames was full

	holdAfter int

	mu       sync.Mutex
	closeErr error // how the connection ended; set before done is closed
}

type rawOptions struct {
	token     string // sent as "Authorization: Bearer <token>" when not empty
	origin    string // sent as the Origin header when not empty
	hold      bool   // stop reading after holdAfter frames, until release
	holdAfter int    // frames read normally before hold takes effect
	backlog   int    // how many received frames may wait for next; zero means 1024
}

// dialRaw opens a WebSocket to n. It fails the test when the upgrade is
// refused; use upgrade to test refusals.
func dialRaw(t testing.TB, n *node, o rawOptions) *rawWS {
	t.Helper()
	r := &rawWS{frames: make(chan []byte, max(o.backlog, 1024)), done: make(chan struct{}), holdAfter: o.holdAfter}
	if o.hold {
		r.hold = make(chan struct{})
	}
	h := http.Header{}
	if o.token != "" {
		h.Set("Authorization", "Bearer "+o.token)
	}
	if o.origin != "" {
		h.Set("Origin", o.origin)
	}
	socket, resp, err := gws.NewClient(r, &gws.ClientOption{
		Addr:             "ws://" + strings.TrimPrefix(n.URL, "http://") + "/v1/ws",
		RequestHeader:    h,
		HandshakeTimeout: 10 * time.Second,
	})
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("WebSocket upgrade failed (status %d): %v", status, err)
	}
	r.socket = socket
	go socket.ReadLoop()
	t.Cleanup(func() {
		r.release()
		r.close()
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			t.Errorf("raw WebSocket did not end within 10s of being closed")
		}
		if n := r.lost.Load(); n > 0 {
			t.Errorf("raw WebSocket dropped %d frames for want of backlog: raise rawOptions.backlog", n)
		}
	})
	return r
}

func (r *rawWS) OnOpen(*gws.Conn)                    {}
func (r *rawWS) OnPing(ws *gws.Conn, payload []byte) { _ = ws.WritePong(payload) }
func (r *rawWS) OnPong(*gws.Conn, []byte)            {}

func (r *rawWS) OnClose(_ *gws.Conn, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-r.done:
	default:
		r.closeErr = err
		close(r.done)
	}
}

func (r *rawWS) OnMessage(_ *gws.Conn, m *gws.Message) {
	b := append([]byte(nil), m.Bytes()...)
	_ = m.Close()
	if r.seen++; r.hold != nil && r.seen > r.holdAfter {
		<-r.hold
	}
	select {
	case r.frames <- b:
	default:
		r.lost.Add(1)
	}
}

// release lets a held connection read again.
func (r *rawWS) release() {
	if r.hold != nil {
		r.once.Do(func() { close(r.hold) })
	}
}

func (r *rawWS) close() {
	nc := r.socket.NetConn()
	_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
	_ = r.socket.WriteClose(1000, nil)
	_ = nc.Close()
}

// send writes one text frame.
func (r *rawWS) send(t testing.TB, frame string) {
	t.Helper()
	if err := r.socket.WriteMessage(gws.OpcodeText, []byte(frame)); err != nil {
		t.Fatalf("write frame: %v", err)
	}
}

// next returns the next frame whose type is one of types (any type when
// none is given), skipping others; it fails the test when the connection
// ends first or nothing comes within 10s.
func (r *rawWS) next(t testing.TB, types ...string) client.ServerFrame {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		var b []byte
		select {
		case b = <-r.frames:
		case <-r.done:
			// OnClose runs after the last OnMessage: whatever was read is queued.
			select {
			case b = <-r.frames:
			default:
				t.Fatalf("connection ended (%v) while waiting for a %v frame", r.err(), types)
			}
		case <-deadline:
			t.Fatalf("no %v frame within 10s", types)
		}
		var f client.ServerFrame
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatalf("server sent a frame that is not JSON: %q", b)
		}
		if len(types) == 0 || slices.Contains(types, f.Type) {
			return f
		}
	}
}

func (r *rawWS) err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closeErr
}

// closeCode waits until the server ends the connection and returns the
// close code it sent (0 when it ended without a close frame).
func (r *rawWS) closeCode(t testing.TB) int {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("the server did not close the connection within 10s")
	}
	var ce *gws.CloseError
	if errors.As(r.err(), &ce) {
		return int(ce.Code)
	}
	return 0
}

// upgrade sends a WebSocket upgrade request to n with extra headers and
// returns the status and body of the answer (101 and an empty body when
// the upgrade was accepted).
func upgrade(t testing.TB, n *node, headers map[string]string) (int, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(n.URL, "http://"), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	b.WriteString("GET /v1/ws HTTP/1.1\r\nHost: " + strings.TrimPrefix(n.URL, "http://") + "\r\n")
	b.WriteString("Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n")
	for k, v := range headers {
		b.WriteString(k + ": " + v + "\r\n")
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read upgrade response: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return resp.StatusCode, ""
	}
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// errorCode returns the code of a REST error body, or "" when body is not
// one.
func errorCode(body string) string {
	var eb client.ErrorBody
	if json.Unmarshal([]byte(body), &eb) != nil {
		return ""
	}
	return eb.Error.Code
}

// metric returns the value of an unlabelled metric from GET /metrics.
func metric(t testing.TB, n *node, name string) float64 {
	t.Helper()
	status, body := rawRequest(t, "GET", n.URL+"/metrics", "", "")
	if status != http.StatusOK {
		t.Fatalf("GET /metrics: %d", status)
	}
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("metric %s has value %q", name, v)
			}
			return f
		}
	}
	t.Fatalf("metric %s not exposed", name)
	return 0
}
