package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lxzan/gws"
	"github.com/natter-chat/natter/internal/protocol"
)

// fakeServer is a minimal in-memory stand-in for the Natter server, enough
// to drive every scenario end to end until the real server can be started
// in tests: accounts, direct and group conversations, WebSocket sends with
// acks and pushes to every member connection, and a /metrics whose RSS
// grows by 10 KiB per open connection.
type fakeServer struct {
	mu      sync.Mutex
	nextID  int
	users   map[string]string             // token -> user id
	members map[string][]string           // conv id -> user ids
	conns   map[string]map[*gws.Conn]bool // user id -> open connections
	seq     map[string]int64
	open    int
}

func startFake(t testing.TB) *httptest.Server {
	t.Helper()
	f := &fakeServer{users: map[string]string{}, members: map[string][]string{}, conns: map[string]map[*gws.Conn]bool{}, seq: map[string]int64{}}
	up := gws.NewUpgrader(f, &gws.ServerOption{})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/accounts", func(w http.ResponseWriter, r *http.Request) {
		var req protocol.CredentialsRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		if len(req.Password) < 12 || req.Username == "" {
			writeJSON(w, 400, protocol.ErrorBody{Error: protocol.ErrorDetail{Code: "weak_password"}})
			return
		}
		f.mu.Lock()
		f.nextID++
		id := strconv.Itoa(f.nextID)
		f.users["tok-"+id] = id
		f.mu.Unlock()
		writeJSON(w, 201, protocol.AuthResponse{User: protocol.User{ID: id, Username: req.Username}, AccessToken: "tok-" + id, RefreshToken: "r"})
	})
	mux.HandleFunc("POST /v1/conversations", func(w http.ResponseWriter, r *http.Request) {
		var req protocol.CreateConversationRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		if len(req.Members) > 100 {
			writeJSON(w, 400, protocol.ErrorBody{Error: protocol.ErrorDetail{Code: "invalid_argument", Message: "too many members"}})
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		f.nextID++
		id := strconv.Itoa(f.nextID)
		f.members[id] = append([]string{f.users[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]}, req.Members...)
		writeJSON(w, 201, protocol.ConversationResponse{Conversation: protocol.Conversation{ID: id, Kind: req.Kind}})
	})
	mux.HandleFunc("POST /v1/conversations/{id}/members", func(w http.ResponseWriter, r *http.Request) {
		var req protocol.MembersRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		f.mu.Lock()
		defer f.mu.Unlock()
		id := r.PathValue("id")
		f.members[id] = append(f.members[id], req.Members...)
		writeJSON(w, 200, protocol.ConversationResponse{Conversation: protocol.Conversation{ID: id}})
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		open := f.open
		f.mu.Unlock()
		fmt.Fprintf(w, "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %d\ngo_goroutines %d\n", 50<<20+open*10<<10, 10+2*open)
		fmt.Fprintf(w, "go_memstats_heap_inuse_bytes %d\ngo_memstats_stack_inuse_bytes %d\n", 8<<20+open*4<<10, 1<<20+open*4<<10)
	})
	mux.HandleFunc("GET /v1/ws", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		user, ok := f.users[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
		f.mu.Unlock()
		if !ok {
			writeJSON(w, 401, protocol.ErrorBody{Error: protocol.ErrorDetail{Code: "unauthenticated"}})
			return
		}
		ws, err := up.Upgrade(w, r)
		if err != nil {
			return
		}
		ws.Session().Store("user", user)
		f.mu.Lock()
		if f.conns[user] == nil {
			f.conns[user] = map[*gws.Conn]bool{}
		}
		f.conns[user][ws] = true
		f.open++
		f.mu.Unlock()
		_ = ws.WriteString(`{"type":"ready","user":"` + user + `","session":"1"}`)
		go ws.ReadLoop()
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeServer) OnOpen(*gws.Conn)                    {}
func (f *fakeServer) OnPing(ws *gws.Conn, payload []byte) { _ = ws.WritePong(payload) }
func (f *fakeServer) OnPong(*gws.Conn, []byte)            {}
func (f *fakeServer) OnClose(ws *gws.Conn, _ error) {
	user, _ := ws.Session().Load("user")
	f.mu.Lock()
	delete(f.conns[user.(string)], ws)
	f.open--
	f.mu.Unlock()
}

func (f *fakeServer) OnMessage(ws *gws.Conn, m *gws.Message) {
	defer m.Close()
	var in protocol.ClientFrame
	if json.Unmarshal(m.Bytes(), &in) != nil || in.Type != protocol.TypeSend {
		return
	}
	user, _ := ws.Session().Load("user")
	f.mu.Lock()
	f.seq[in.Conv]++
	msg := protocol.Message{ID: "m", Conv: in.Conv, Seq: f.seq[in.Conv], Sender: user.(string), ClientID: in.ClientID, Text: in.Text, SentAt: time.Now()}
	var targets []*gws.Conn
	for _, member := range f.members[in.Conv] {
		for c := range f.conns[member] {
			if c != ws { // like the real server: the ack is the sender's copy
				targets = append(targets, c)
			}
		}
	}
	f.mu.Unlock()
	push, _ := json.Marshal(map[string]any{"type": "message", "message": msg})
	for _, c := range targets {
		_ = c.WriteMessage(gws.OpcodeText, push)
	}
	ack, _ := json.Marshal(map[string]any{"type": "ack", "ref": in.Ref, "message": msg})
	_ = ws.WriteMessage(gws.OpcodeText, ack)
}

// lastResult parses the JSON line Run prints last.
func lastResult(t testing.TB, out string) Result {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var res Result
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("last line of the report is not a Result: %v\n%s", err, out)
	}
	return res
}

func TestRun_ScenariosAgainstFakeServer(t *testing.T) {
	srv := startFake(t)
	for _, tc := range []struct {
		opts  Options
		check func(t *testing.T, res Result)
	}{{
		opts: Options{Scenario: ScenarioSends, Senders: 3, Messages: 40, Window: 4, TextSize: 10},
		check: func(t *testing.T, res Result) {
			if res.Sent != 120 || res.Acked != 120 || res.Deliveries != 120 || res.ExpectedDeliveries != 120 {
				t.Errorf("sent %d acked %d delivered %d of %d, want 120 each", res.Sent, res.Acked, res.Deliveries, res.ExpectedDeliveries)
			}
			if res.Ack == nil || res.Ack.Count != 120 || res.Delivery == nil || res.Delivery.Count != 120 || res.SendsPerSec <= 0 {
				t.Errorf("latencies ack %+v delivery %+v, %g sends/s", res.Ack, res.Delivery, res.SendsPerSec)
			}
		},
	}, {
		// 150 members: created with 99 others, then one addition of 50.
		opts: Options{Scenario: ScenarioFanout, Members: 150, Messages: 5, Rate: 200, SetupParallel: 16},
		check: func(t *testing.T, res Result) {
			if res.Acked != 5 || res.Deliveries != 745 || res.ExpectedDeliveries != 745 || res.Delivery.Count != 745 {
				t.Errorf("acked %d, delivered %d of %d (%d samples), want 5 and 745", res.Acked, res.Deliveries, res.ExpectedDeliveries, res.Delivery.Count)
			}
		},
	}, {
		opts: Options{Scenario: ScenarioIdle, Conns: 40, Users: 2, LocalAddrs: []string{"127.0.0.1"}},
		check: func(t *testing.T, res Result) {
			if res.Conns != 40 || res.KiBPerConn != 10 || res.HeapStackKiBPerConn != 8 || res.GoroutinesConn != 2 || len(res.Errors) != 0 {
				t.Errorf("conns %d, %g KiB RSS, %g KiB heap+stack and %g goroutines per conn, errors %v; want 40, 10, 8, 2, none",
					res.Conns, res.KiBPerConn, res.HeapStackKiBPerConn, res.GoroutinesConn, res.Errors)
			}
		},
	}} {
		t.Run(tc.opts.Scenario, func(t *testing.T) {
			before := runtime.NumGoroutine()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			tc.opts.Addr = srv.URL
			var out bytes.Buffer
			if err := Run(ctx, tc.opts, &out); err != nil {
				t.Fatalf("Run: %v\n%s", err, out.String())
			}
			res := lastResult(t, out.String())
			if res.Scenario != tc.opts.Scenario || len(res.ConnLost) != 0 {
				t.Errorf("scenario %q, connections lost %v", res.Scenario, res.ConnLost)
			}
			tc.check(t, res)
			if t.Failed() {
				t.Logf("report:\n%s", out.String())
			}
			// Every connection Run opened is closed when it returns.
			deadline := time.Now().Add(5 * time.Second)
			for runtime.NumGoroutine() > before+5 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if n := runtime.NumGoroutine(); n > before+5 {
				t.Errorf("%d goroutines after Run, %d before", n, before)
			}
		})
	}
}

func TestRun_DurationCapsTheMeasuredPhase(t *testing.T) {
	srv := startFake(t)
	var out bytes.Buffer
	start := time.Now()
	err := Run(context.Background(), Options{Addr: srv.URL, Scenario: ScenarioFanout, Members: 2, Messages: 1000, Rate: 10, Duration: 300 * time.Millisecond}, &out)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("Run took %s with a 300ms cap", took)
	}
	res := lastResult(t, out.String())
	if res.Sent < 1 || res.Sent > 5 || res.Acked != res.Sent {
		t.Errorf("sent %d, acked %d; want the ~3 messages that fit in 300ms at 10/s", res.Sent, res.Acked)
	}
}
