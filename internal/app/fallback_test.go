package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/internal/app"
)

// The fallback transport for networks that block WebSocket: Server-Sent
// Events on GET /v1/events for the server's frames, POST /v1/frames for
// the client's.

// connectSSE opens a Conn over SSE for c that records pushed frames in an
// inbox.
func connectSSE(t testing.TB, c *client.Client) (*client.Conn, *inbox) {
	t.Helper()
	in := newInbox()
	conn, err := c.Connect(ctxT(t), client.ConnOptions{Transport: client.TransportSSE, OnEvent: in.onEvent, EventBuffer: 1 << 16})
	if err != nil {
		t.Fatalf("connect over SSE: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if got := conn.Transport(); got != client.TransportSSE {
		t.Fatalf("Transport() = %q, want %q", got, client.TransportSSE)
	}
	return conn, in
}

// waitFrame polls in until a pushed frame satisfies match, failing the
// test after a deadline.
func (b *inbox) waitFrame(t testing.TB, what string, match func(client.ServerFrame) bool) client.ServerFrame {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		frames := b.frames()
		if i := slices.IndexFunc(frames, match); i >= 0 {
			return frames[i]
		}
		select {
		case <-b.ch:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out waiting for %s; have %d frames", what, len(frames))
		}
	}
}

func TestFallback_SSESendsAndReceivesLikeAWebSocket(t *testing.T) {
	n := startNode(t, "")
	alice, aliceID := n.user(t, "alice")
	bob, bobID := n.user(t, "bob")
	conv, err := alice.CreateDirect(ctxT(t), bobID)
	if err != nil {
		t.Fatal(err)
	}
	sse, sseIn := connectSSE(t, alice)
	if sse.UserID() != aliceID || sse.SessionID() != alice.Tokens().SessionID {
		t.Errorf("ready over SSE says user %q session %q, want %q %q", sse.UserID(), sse.SessionID(), aliceID, alice.Tokens().SessionID)
	}
	_, otherIn := connectSSE(t, alice) // alice's second device, also on SSE
	ws, wsIn := connect(t, bob)

	msg, dup, err := sse.Send(ctxT(t), conv.ID, "sse-1", "hello over SSE")
	if err != nil || dup {
		t.Fatalf("send over SSE: %v (duplicate %v)", err, dup)
	}
	if msg.Seq != 1 || msg.Text != "hello over SSE" || msg.Sender != aliceID {
		t.Fatalf("ack over SSE carries %+v", msg)
	}
	for name, in := range map[string]*inbox{"bob's WebSocket": wsIn, "alice's other SSE device": otherIn} {
		got := in.waitFor(t, name+" to receive the message", func(ms []client.Message) bool { return len(ms) >= 1 })
		if got[0].ID != msg.ID {
			t.Errorf("%s received %+v, want %+v", name, got[0], msg)
		}
	}

	reply, _, err := ws.Send(ctxT(t), conv.ID, "ws-1", "hello over WebSocket")
	if err != nil {
		t.Fatal(err)
	}
	got := sseIn.waitFor(t, "the SSE client to receive the WebSocket send", func(ms []client.Message) bool {
		return slices.ContainsFunc(ms, func(m client.Message) bool { return m.ID == reply.ID })
	})
	// Events of a conversation reach a stream in commit order, so had the
	// sending stream been echoed its own message, it would be here already.
	for _, m := range got {
		if m.ID == msg.ID {
			t.Errorf("the sending stream got its own message %s pushed back: the ack is its copy", m.ClientID)
		}
	}

	again, dup, err := sse.Send(ctxT(t), conv.ID, "sse-1", "hello over SSE")
	if err != nil || !dup || again.ID != msg.ID || again.Seq != msg.Seq {
		t.Fatalf("retry over SSE = %+v dup=%v err=%v; want the original %+v marked duplicate", again, dup, err, msg)
	}
	if page, err := alice.History(ctxT(t), conv.ID, client.HistoryQuery{}); err != nil || len(page.Messages) != 2 {
		t.Fatalf("history after a retried send: %d messages (err %v), want 2", len(page.Messages), err)
	}

	// The other requests answer as on the WebSocket.
	if readSeq, err := sse.MarkRead(ctxT(t), conv.ID, reply.Seq); err != nil || readSeq != reply.Seq {
		t.Errorf("MarkRead over SSE = %d, %v; want %d", readSeq, err, reply.Seq)
	}
	if msgs, more, err := sse.Sync(ctxT(t), conv.ID, 0, 1); err != nil || len(msgs) != 1 || !more || msgs[0].ID != msg.ID {
		t.Errorf("Sync over SSE = %d messages, more=%v, %v; want the first message and more", len(msgs), more, err)
	}
	edited, err := sse.Edit(ctxT(t), conv.ID, msg.ID, "edited over SSE")
	if err != nil || edited.Text != "edited over SSE" || edited.EditedAt == nil {
		t.Errorf("Edit over SSE = %+v, %v", edited, err)
	}
	wsIn.waitFrame(t, "bob to see the edit", func(f client.ServerFrame) bool {
		m, _ := f.Msg()
		return f.Type == client.TypeMessageUpdated && m != nil && m.Text == "edited over SSE"
	})
	if err := sse.Typing(ctxT(t), conv.ID, true); err != nil {
		t.Errorf("Typing over SSE: %v", err)
	}
	wsIn.waitFrame(t, "bob to see alice typing", func(f client.ServerFrame) bool { return f.Type == client.TypeTyping && f.User == aliceID })
	if err := sse.SetStatus(ctxT(t), "away"); err != nil {
		t.Errorf("SetStatus over SSE: %v", err)
	}
	if err := sse.Ping(ctxT(t)); err != nil {
		t.Errorf("Ping over SSE: %v", err)
	}
	if _, _, err := sse.Sync(ctxT(t), "999999999", 0, 0); client.ErrorCode(err) != "not_found" {
		t.Errorf("Sync of an unknown conversation over SSE: %v, want an *Error not_found", err)
	}
}

func TestFallback_SSEStreamIsAConnection(t *testing.T) {
	n := startNode(t, "")
	alice, aliceID := n.user(t, "alice")
	bob, _ := n.user(t, "bob")
	sse, _ := connectSSE(t, alice)
	if c := metric(t, n, "natter_ws_connections"); c != 1 {
		t.Errorf("%v connections open with one event stream, want 1", c)
	}
	pollPresence := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			ps, err := bob.Presence(ctxT(t), aliceID)
			if err != nil {
				t.Fatal(err)
			}
			if len(ps) == 1 && ps[0].Status == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("alice's presence is %+v, want %s", ps, want)
			}
			<-time.After(10 * time.Millisecond) // poll interval
		}
	}
	pollPresence("online")
	if err := sse.SetStatus(ctxT(t), "away"); err != nil {
		t.Fatal(err)
	}
	pollPresence("away")
	_ = sse.Close()
	deadline := time.Now().Add(10 * time.Second)
	for metric(t, n, "natter_ws_connections") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the event stream still counts as a connection 10s after the client closed it")
		}
		<-time.After(10 * time.Millisecond) // poll interval
	}
}

func TestFallback_CatchUpAfterDisconnect(t *testing.T) {
	n := startNode(t, "")
	alice, _ := n.user(t, "alice")
	bob, bobID := n.user(t, "bob")
	conv, err := alice.CreateDirect(ctxT(t), bobID)
	if err != nil {
		t.Fatal(err)
	}
	sse, in := connectSSE(t, alice)
	first, err := bob.Send(ctxT(t), conv.ID, "b-0", "before")
	if err != nil {
		t.Fatal(err)
	}
	seen := in.waitFor(t, "the first message", func(ms []client.Message) bool { return len(ms) == 1 })
	if err := sse.Close(); err != nil {
		t.Fatal(err)
	}
	<-sse.Done()
	if _, _, err := sse.Send(ctxT(t), conv.ID, "late", "after close"); !errors.Is(err, client.ErrClosed) {
		t.Errorf("Send after Close: %v, want ErrClosed", err)
	}
	var missed []string
	for i := range 3 {
		r, err := bob.Send(ctxT(t), conv.ID, fmt.Sprintf("b-%d", i+1), "while away")
		if err != nil {
			t.Fatal(err)
		}
		missed = append(missed, r.Message.ID)
	}
	again, _ := connectSSE(t, alice)
	got, err := again.CatchUp(ctxT(t), conv.ID, seen[len(seen)-1].Seq)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i, m := range got {
		ids = append(ids, m.ID)
		if m.Seq != first.Message.Seq+int64(i)+1 {
			t.Errorf("caught-up message %d has seq %d, want %d", i, m.Seq, first.Message.Seq+int64(i)+1)
		}
	}
	if !slices.Equal(ids, missed) {
		t.Errorf("CatchUp over SSE returned %v, want exactly the missed %v", ids, missed)
	}
}

func TestFallback_SyncStreamOverSSEAndReplayOnConnect(t *testing.T) {
	n := startNode(t, "")
	alice, _ := n.user(t, "alice")
	bob, bobID := n.user(t, "bob")
	conv, err := alice.CreateDirect(ctxT(t), bobID)
	if err != nil {
		t.Fatal(err)
	}
	sse, _ := connectSSE(t, alice)
	var sent []string
	for i := range 3 {
		r, err := bob.Send(ctxT(t), conv.ID, fmt.Sprintf("m-%d", i), "to sync")
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, r.Message.ID)
	}
	page, err := sse.Changes(ctxT(t), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := changedMessages(page.Changes); !slices.Equal(got, sent) {
		t.Errorf("Changes over SSE lists messages %v, want %v", got, sent)
	}

	// GET /v1/events?cursor=N replays the sync stream after N before the
	// live events.
	s := dialStream(t, n, alice.Tokens().AccessToken, "?cursor=0")
	ready := s.next(t)
	if ready.Type != "ready" || ready.Conn == "" || ready.Session != alice.Tokens().SessionID {
		t.Fatalf("first event %+v, want ready with the stream id in conn", ready)
	}
	var replayed []string
	for {
		f := s.next(t)
		if f.Type != "changes" || len(f.Ref) != 0 {
			t.Fatalf("replay sent %s (ref %s), want changes frames without ref", f.Type, f.Ref)
		}
		replayed = append(replayed, changedMessages(f.Changes)...)
		if !f.HasMore {
			if f.Cursor != page.Cursor {
				t.Errorf("replay ended at cursor %d, want %d", f.Cursor, page.Cursor)
			}
			break
		}
	}
	if !slices.Equal(replayed, sent) {
		t.Errorf("replay holds messages %v, want %v", replayed, sent)
	}
	live, err := bob.Send(ctxT(t), conv.ID, "m-live", "live")
	if err != nil {
		t.Fatal(err)
	}
	if f := s.next(t); f.Type != "message" {
		t.Errorf("after the replay the stream sent %s, want the live message", f.Type)
	} else if m, _ := f.Msg(); m == nil || m.ID != live.Message.ID {
		t.Errorf("after the replay the stream sent %+v, want message %s", m, live.Message.ID)
	}

	// Replaying from the live position gives one empty page.
	s2 := dialStream(t, n, alice.Tokens().AccessToken, fmt.Sprintf("?cursor=%d", live.Message.Pos))
	s2.next(t)
	if f := s2.next(t); f.Type != "changes" || f.HasMore || len(f.Changes) != 0 {
		t.Errorf("replay from the end sent %s has_more=%v (%d changes), want one empty changes frame", f.Type, f.HasMore, len(f.Changes))
	}
	// A cursor ahead of the server (another database) is told to resync.
	s3 := dialStream(t, n, alice.Tokens().AccessToken, fmt.Sprintf("?cursor=%d", live.Message.Pos+1000))
	s3.next(t)
	if f := s3.next(t); f.Type != "error" || f.Code != "resync_required" || f.Cursor != live.Message.Pos {
		t.Errorf("replay from a cursor ahead of the server sent %s %s cursor %d, want resync_required at %d", f.Type, f.Code, f.Cursor, live.Message.Pos)
	}
	for _, q := range []string{"?cursor=-1", "?cursor=x", "?cursor="} {
		if status, body := rawRequest(t, "GET", n.URL+"/v1/events"+q, alice.Tokens().AccessToken, ""); status != http.StatusBadRequest || errorCode(body) != "invalid_argument" {
			t.Errorf("GET /v1/events%s: %d %s, want 400 invalid_argument", q, status, body)
		}
	}
}

func TestFallback_ReplayTooLongIsResyncRequiredThenLive(t *testing.T) {
	n := startNode(t, "", func(c *app.Config) { c.MaxReplay = 2 })
	alice, _ := n.user(t, "alice")
	bob, bobID := n.user(t, "bob")
	conv, err := alice.CreateDirect(ctxT(t), bobID)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := bob.Send(ctxT(t), conv.ID, fmt.Sprintf("m-%d", i), "a long gap"); err != nil {
			t.Fatal(err)
		}
	}
	s := dialStream(t, n, alice.Tokens().AccessToken, "?cursor=0")
	if f := s.next(t); f.Type != "ready" {
		t.Fatalf("first event %s, want ready", f.Type)
	}
	f := s.next(t)
	if f.Type != "error" || f.Code != "resync_required" || f.Cursor <= 0 {
		t.Fatalf("a replay over MaxReplay sent %s %s cursor %d, want error resync_required with a cursor", f.Type, f.Code, f.Cursor)
	}
	live, err := bob.Send(ctxT(t), conv.ID, "m-live", "live")
	if err != nil {
		t.Fatal(err)
	}
	// An earlier message's live frame may still be on its way (a change
	// can arrive once replayed and once live); what follows the cursor
	// must be the live message.
	for {
		g := s.next(t)
		if g.Type != "message" {
			t.Fatalf("after resync_required the stream sent %s, want the live message", g.Type)
		}
		m, _ := g.Msg()
		if m != nil && m.Pos <= f.Cursor {
			continue
		}
		if m == nil || m.ID != live.Message.ID {
			t.Errorf("after resync_required the stream sent %+v, want message %s", m, live.Message.ID)
		}
		break
	}
}

func TestFallback_PostedFramesActForTheirStream(t *testing.T) {
	n := startNode(t, "")
	alice, _ := n.user(t, "alice")
	bob, bobID := n.user(t, "bob")
	conv, err := alice.CreateDirect(ctxT(t), bobID)
	if err != nil {
		t.Fatal(err)
	}
	token := alice.Tokens().AccessToken
	s := dialStream(t, n, token, "")
	ready := s.next(t)

	// A send naming the stream is not echoed to it; one without the header is.
	send := func(tok, conn, clientID string) client.ServerFrame {
		t.Helper()
		status, body := postFrame(t, n, tok, conn, fmt.Sprintf(`{"type":"send","ref":"r","conv":%q,"client_id":%q,"text":"hi"}`, conv.ID, clientID))
		var f client.ServerFrame
		if status != http.StatusOK || json.Unmarshal([]byte(body), &f) != nil || f.Type != "ack" || string(f.Ref) != `"r"` {
			t.Fatalf("POST send: %d %s, want 200 with an ack for ref \"r\"", status, body)
		}
		return f
	}
	send(token, ready.Conn, "named")
	ack := send(token, "", "unnamed")
	unnamed, _ := ack.Msg()
	if f := s.next(t); f.Type != "message" {
		t.Fatalf("stream got %s, want a message", f.Type)
	} else if m, _ := f.Msg(); m.ID != unnamed.ID {
		t.Fatalf("stream got message %s first, want %s: a send naming the stream must not be echoed to it", m.ClientID, unnamed.ClientID)
	}
	// Another user cannot name alice's stream to keep messages from it.
	ack = send(bob.Tokens().AccessToken, ready.Conn, "bob")
	fromBob, _ := ack.Msg()
	if f := s.next(t); f.Type != "message" {
		t.Fatalf("stream got %s, want bob's message", f.Type)
	} else if m, _ := f.Msg(); m.ID != fromBob.ID {
		t.Fatalf("stream got %s, want bob's message %s", m.ClientID, fromBob.ID)
	}
	// Presence applies to a stream, and only to one's own.
	for _, conn := range []string{"", "12345", ready.Conn} {
		status, body := postFrame(t, n, bob.Tokens().AccessToken, conn, `{"type":"presence","ref":1,"status":"away"}`)
		if status != http.StatusOK || frameCode(body) != "invalid_argument" {
			t.Errorf("bob's presence naming stream %q: %d %s, want 200 with error invalid_argument", conn, status, body)
		}
	}
	if status, body := postFrame(t, n, token, ready.Conn, `{"type":"presence","ref":1,"status":"away"}`); status != http.StatusOK || !strings.Contains(body, `"ack"`) {
		t.Errorf("presence naming one's stream: %d %s, want 200 ack", status, body)
	}

	cases := []struct {
		name, token, body string
		status            int
		code              string // of the error body or frame
		contains          string
	}{
		{"no token", "", `{"type":"ping"}`, http.StatusUnauthorized, "unauthenticated", ""},
		{"forged token", "x.y.z", `{"type":"ping"}`, http.StatusUnauthorized, "unauthenticated", ""},
		{"not JSON", token, `{"type":`, http.StatusBadRequest, "invalid_json", ""},
		{"invalid UTF-8", token, "{\"type\":\"ping\",\"ref\":\"\xff\"}", http.StatusBadRequest, "invalid_json", ""},
		{"too large", token, `{"type":"send","text":"` + strings.Repeat("x", 100<<10) + `"}`, http.StatusRequestEntityTooLarge, "too_large", ""},
		{"unknown type", token, `{"type":"dance","ref":7}`, http.StatusOK, "unknown_type", `"ref":7`},
		{"bad ref", token, `{"type":"ping","ref":{"a":1}}`, http.StatusOK, "invalid_argument", ""},
		{"frame error", token, `{"type":"read","ref":"x","conv":"999999999","seq":1}`, http.StatusOK, "not_found", `"ref":"x"`},
		{"ping", token, `{"type":"ping","ref":"p"}`, http.StatusOK, "", `{"type":"pong","ref":"p"}`},
	}
	for _, tc := range cases {
		status, body := postFrame(t, n, tc.token, "", tc.body)
		code := errorCode(body)
		if status == http.StatusOK {
			code = frameCode(body)
		}
		if status != tc.status || code != tc.code || !strings.Contains(body, tc.contains) {
			t.Errorf("%s: %d %s, want %d with code %q containing %s", tc.name, status, body[:min(len(body), 200)], tc.status, tc.code, tc.contains)
		}
	}
	if status, body := postFrame(t, n, token, "", fmt.Sprintf(`{"type":"typing","conv":%q,"state":"start"}`, conv.ID)); status != http.StatusNoContent {
		t.Errorf("typing without a ref: %d %s, want 204 (no answer)", status, body)
	}
}

func TestFallback_RevokedSessionEndsTheStream(t *testing.T) {
	n := startNode(t, "")
	phone, _ := n.user(t, "owner")
	me, err := phone.Me(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	stolen := client.New(n.URL, client.Options{Device: "stolen laptop"})
	if _, err := stolen.Login(ctxT(t), me.Username, "a long enough passphrase"); err != nil {
		t.Fatal(err)
	}
	sse, in := connectSSE(t, stolen)
	if err := phone.RevokeSession(ctxT(t), stolen.Tokens().SessionID); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sse.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the event stream of a revoked session is still open 10s later")
	}
	if code := sse.CloseCode(); code != client.CloseSessionRevoked {
		t.Errorf("CloseCode = %d (%v), want %d", code, sse.Err(), client.CloseSessionRevoked)
	}
	in.waitFrame(t, "the unauthenticated error frame", func(f client.ServerFrame) bool {
		return f.Type == client.TypeError && f.Code == "unauthenticated" && len(f.Ref) == 0
	})
	if err := sse.Ping(ctxT(t)); !errors.Is(err, client.ErrClosed) {
		t.Errorf("Ping after the revocation: %v, want ErrClosed", err)
	}
	if status, _ := postFrame(t, n, stolen.Tokens().AccessToken, "", `{"type":"ping"}`); status != http.StatusUnauthorized {
		t.Errorf("POST /v1/frames with the revoked token: %d, want 401", status)
	}
	if status, _ := rawRequest(t, "GET", n.URL+"/v1/events", stolen.Tokens().AccessToken, ""); status != http.StatusUnauthorized {
		t.Errorf("GET /v1/events with the revoked token: %d, want 401", status)
	}
}

func TestFallback_DrainTellsStreamsToReconnect(t *testing.T) {
	const jitter = 50 * time.Millisecond // startNode's DrainJitter
	n := startNode(t, "")
	alice, _ := n.user(t, "alice")
	sse, in := connectSSE(t, alice)
	n.stop()
	select {
	case <-sse.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the event stream is still open 10s after the node stopped")
	}
	if code := sse.CloseCode(); code != 1001 {
		t.Errorf("CloseCode = %d (%v), want 1001 as on a drained WebSocket", code, sse.Err())
	}
	f := in.waitFrame(t, "the reconnect frame", func(f client.ServerFrame) bool { return f.Type == client.TypeReconnect })
	if after := time.Duration(f.AfterMS) * time.Millisecond; after < 0 || after >= jitter {
		t.Errorf("told to reconnect after %v, want within the %v jitter", after, jitter)
	}
}

func TestFallback_AutoFallsBackWhenWebSocketIsBlocked(t *testing.T) {
	n := startNode(t, "")
	alice, aliceID := n.user(t, "alice")
	bob, bobID := n.user(t, "bob")
	conv, err := alice.CreateDirect(ctxT(t), bobID)
	if err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, n, true)
	behind := client.New(p.URL, client.Options{})
	behind.SetTokens(alice.Tokens())
	in := newInbox()
	conn, err := behind.Connect(ctxT(t), client.ConnOptions{OnEvent: in.onEvent})
	if err != nil {
		t.Fatalf("auto connect behind a proxy that refuses WebSockets: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if got := conn.Transport(); got != client.TransportSSE {
		t.Fatalf("Transport() = %q behind a proxy that refuses WebSockets, want %q", got, client.TransportSSE)
	}
	if conn.UserID() != aliceID {
		t.Errorf("UserID() = %q, want %q", conn.UserID(), aliceID)
	}
	ws, wsIn := connect(t, bob)
	m, _, err := conn.Send(ctxT(t), conv.ID, "through-proxy", "hello through the proxy")
	if err != nil {
		t.Fatal(err)
	}
	wsIn.waitFor(t, "bob to get the message sent through the proxy", func(ms []client.Message) bool {
		return len(ms) == 1 && ms[0].ID == m.ID
	})
	r, _, err := ws.Send(ctxT(t), conv.ID, "to-proxy", "hello behind the proxy")
	if err != nil {
		t.Fatal(err)
	}
	in.waitFor(t, "alice to get bob's message through the proxy", func(ms []client.Message) bool {
		return len(ms) == 1 && ms[0].ID == r.ID
	})

	// Without the block, auto picks the WebSocket; a refused token is not
	// retried over SSE.
	open := startProxy(t, n, false)
	direct := client.New(open.URL, client.Options{})
	direct.SetTokens(alice.Tokens())
	wsConn, err := direct.Connect(ctxT(t), client.ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer wsConn.Close()
	if got := wsConn.Transport(); got != client.TransportWebSocket {
		t.Errorf("Transport() = %q through an open proxy, want %q", got, client.TransportWebSocket)
	}
	forged := client.New(open.URL, client.Options{})
	forged.SetTokens(client.Tokens{AccessToken: "x.y.z"})
	if _, err := forged.Connect(ctxT(t), client.ConnOptions{}); client.ErrorCode(err) != "unauthenticated" {
		t.Errorf("auto connect with a forged token: %v, want unauthenticated", err)
	}
	if got := open.events.Load(); got != 0 {
		t.Errorf("%d requests to /v1/events through the open proxy, want 0: neither a working WebSocket nor a refused token should fall back", got)
	}
}

func TestFallback_SlowStreamIsCutOffAndCatchesUp(t *testing.T) {
	n := startNode(t, "", func(c *app.Config) {
		c.WS.QueueFrames = 16
		c.WS.WriteTimeout = 500 * time.Millisecond
		c.WS.FrameRate = 1e6 // the sender floods
		c.SendRate = -1
	})
	sender, _ := n.user(t, "sender")
	slowUser, slowID := n.user(t, "slow")
	conv, err := sender.CreateDirect(ctxT(t), slowID)
	if err != nil {
		t.Fatal(err)
	}
	// The slow client takes its ready frame, then stops reading.
	s := dialStream(t, n, slowUser.Tokens().AccessToken, "")
	s.next(t)
	s.hold.Store(true)
	out, _ := connect(t, sender)
	text := strings.Repeat("flood ", 700) // about 4 KiB
	sent := 0
	const batch, workers = 200, 8
	for metric(t, n, "natter_ws_slow_consumer_closes_total") < 1 {
		if sent >= 10000 {
			t.Fatalf("%d messages of 4 KiB to a stream that reads nothing, and it was never cut off", sent)
		}
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := range workers {
			first := sent + w*batch/workers
			wg.Go(func() {
				for i := first; i < first+batch/workers; i++ {
					if _, _, err := out.Send(ctxT(t), conv.ID, fmt.Sprintf("m%d", i), text); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("the sender could not send: %v", err)
		}
		sent += batch
	}
	t.Logf("cut off after %d sends", sent)
	deadline := time.Now().Add(10 * time.Second)
	for metric(t, n, "natter_ws_connections") != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the slow stream still counts as a connection 10s after it was cut off")
		}
		<-time.After(10 * time.Millisecond) // poll interval
	}
	// The client sees its stream end once it reads again.
	s.hold.Store(false)
	s.waitEnd(t)
	// Reconnected, the client catches up on everything.
	again, _ := connectSSE(t, slowUser)
	msgs, err := again.CatchUp(ctxT(t), conv.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != sent {
		t.Errorf("caught up on %d messages, want %d", len(msgs), sent)
	}
}

// changedMessages returns the ids of the messages in a page of changes.
func changedMessages(cs []client.Change) []string {
	var ids []string
	for _, c := range cs {
		if c.Message != nil {
			ids = append(ids, c.Message.ID)
		}
	}
	return ids
}

// sseFrame is a frame of the event stream, with the ready frame's conn.
type sseFrame struct {
	client.ServerFrame
	Conn string `json:"conn"`
}

// rawStream reads GET /v1/events without the client package.
type rawStream struct {
	events chan []byte // the data of each event, in order
	hold   atomic.Bool // set: the reader stops reading the body
}

// dialStream opens an event stream with token; query is "" or "?...". It
// fails the test unless the server answers 200 with an event stream.
func dialStream(t testing.TB, n *node, token, query string) *rawStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.URL+"/v1/events"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET /v1/events: %v", err)
	}
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		cancel()
		t.Fatalf("GET /v1/events%s: %d %s %s, want 200 text/event-stream", query, res.StatusCode, res.Header.Get("Content-Type"), b)
	}
	s := &rawStream{events: make(chan []byte, 1<<14)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(s.events)
		r := bufio.NewReader(res.Body)
		var data []byte
		for {
			for s.hold.Load() {
				select {
				case <-ctx.Done():
					return
				case <-time.After(10 * time.Millisecond): // poll interval
				}
			}
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimSuffix(line, "\n")
			switch {
			case line == "":
				if data != nil {
					select {
					case s.events <- data:
					case <-ctx.Done():
						return
					}
					data = nil
				}
			case strings.HasPrefix(line, "data: "):
				data = append(data, strings.TrimPrefix(line, "data: ")...)
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		res.Body.Close()
		<-done
	})
	return s
}

// next returns the next frame of the stream, failing the test when none
// comes within 10s or the stream ends.
func (s *rawStream) next(t testing.TB) sseFrame {
	t.Helper()
	select {
	case data, ok := <-s.events:
		if !ok {
			t.Fatal("the event stream ended")
		}
		var f sseFrame
		if err := json.Unmarshal(data, &f); err != nil {
			t.Fatalf("event %q is not a JSON frame: %v", data, err)
		}
		return f
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
	}
	return sseFrame{}
}

// waitEnd reads the stream until it ends, failing the test when it is
// still open after 10s.
func (s *rawStream) waitEnd(t testing.TB) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-s.events:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("the event stream is still open after 10s")
		}
	}
}

// postFrame posts a frame to /v1/frames, naming stream conn when not
// empty, and returns the status and body.
func postFrame(t testing.TB, n *node, token, conn, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxT(t), http.MethodPost, n.URL+"/v1/frames", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if conn != "" {
		req.Header.Set("X-Natter-Conn", conn)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST /v1/frames: %v", err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode == http.StatusOK && res.Header.Get("Content-Type") != "application/json" {
		t.Errorf("POST /v1/frames answered 200 with Content-Type %q, want application/json", res.Header.Get("Content-Type"))
	}
	return res.StatusCode, string(b)
}

// frameCode returns the code of an error frame, or "" when body is not
// one.
func frameCode(body string) string {
	var f client.ServerFrame
	if json.Unmarshal([]byte(body), &f) != nil || f.Type != "error" {
		return ""
	}
	return f.Code
}

// proxy is an HTTP proxy in front of a node, like one on a network that
// blocks WebSocket.
type proxy struct {
	URL    string
	events atomic.Int64 // requests for /v1/events
}

// startProxy forwards every request to n, except that with blockWS it
// answers 403 to the WebSocket upgrade.
func startProxy(t testing.TB, n *node, blockWS bool) *proxy {
	t.Helper()
	target, err := url.Parse(n.URL)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.FlushInterval = -1
	p := &proxy{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/ws":
			if blockWS {
				http.Error(w, "WebSocket is not allowed on this network", http.StatusForbidden)
				return
			}
		case "/v1/events":
			p.events.Add(1)
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}
