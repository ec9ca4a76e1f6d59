package app_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lxzan/gws"

	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/internal/app"
)

func TestBadInput_REST(t *testing.T) {
	n := startNode(t, "")
	alice, _ := n.user(t, "alice")
	_, bobID := n.user(t, "bob")
	conv, err := alice.CreateDirect(ctxT(t), bobID)
	if err != nil {
		t.Fatal(err)
	}
	token := alice.Tokens().AccessToken
	convURL := n.URL + "/v1/conversations/" + conv.ID
	send := func(clientID, text string) string {
		return fmt.Sprintf(`{"client_id":%q,"text":%q}`, clientID, text)
	}
	cases := []struct {
		name, method, url, body string
		status                  int
		code                    string
	}{
		{"malformed JSON", "POST", convURL + "/messages", `{"client_id":"m1","text":`, 400, "invalid_json"},
		{"empty body", "POST", convURL + "/messages", ``, 400, "invalid_json"},
		{"not an object", "POST", convURL + "/messages", `["m1","hi"]`, 400, "invalid_json"},
		{"unknown field", "POST", convURL + "/messages", `{"client_id":"m2","text":"hi","sender":"someone else"}`, 400, "invalid_json"},
		{"field of the wrong type", "POST", convURL + "/messages", `{"client_id":3,"text":"hi"}`, 400, "invalid_json"},
		{"two objects", "POST", convURL + "/messages", send("m4", "hi") + send("m5", "hi"), 400, "invalid_json"},
		{"body over 64 KiB", "POST", convURL + "/messages", send("m6", strings.Repeat("x", 70<<10)), 413, "too_large"},
		{"text over 16 KiB", "POST", convURL + "/messages", send("m7", strings.Repeat("x", 16<<10+1)), 413, "too_large"},
		{"text over 16 KiB in multi-byte characters", "POST", convURL + "/messages", send("m8", strings.Repeat("€", 5462)), 413, "too_large"},
		{"invalid UTF-8 in the text", "POST", convURL + "/messages", "{\"client_id\":\"m9\",\"text\":\"bad \xff\xfe byte\"}", 400, "invalid_json"},
		{"invalid UTF-8 in the client_id", "POST", convURL + "/messages", "{\"client_id\":\"m\xc3\",\"text\":\"hi\"}", 400, "invalid_json"},
		{"empty text", "POST", convURL + "/messages", send("m10", ""), 400, "invalid_argument"},
		{"missing client_id", "POST", convURL + "/messages", `{"text":"hi"}`, 400, "invalid_argument"},
		{"client_id over 128 bytes", "POST", convURL + "/messages", send(strings.Repeat("k", 129), "hi"), 400, "invalid_argument"},
		{"non-numeric conversation id", "GET", n.URL + "/v1/conversations/general", "", 400, "invalid_argument"},
		{"negative conversation id", "GET", n.URL + "/v1/conversations/-5/messages", "", 400, "invalid_argument"},
		{"non-numeric conversation id on send", "POST", n.URL + "/v1/conversations/abc/messages", send("m11", "hi"), 400, "invalid_argument"},
		{"non-numeric user id", "DELETE", convURL + "/members/bob", "", 400, "invalid_argument"},
		{"non-numeric session id", "DELETE", n.URL + "/v1/sessions/phone", "", 400, "invalid_argument"},
		{"non-numeric member id in a new group", "POST", n.URL + "/v1/conversations", `{"kind":"group","members":["bob"]}`, 400, "invalid_argument"},
		{"history with before and after", "GET", convURL + "/messages?before=5&after=1", "", 400, "invalid_argument"},
		{"history with before=0", "GET", convURL + "/messages?before=0", "", 400, "invalid_argument"},
		{"history with a non-numeric limit", "GET", convURL + "/messages?limit=lots", "", 400, "invalid_argument"},
		{"history with a negative after", "GET", convURL + "/messages?after=-1", "", 400, "invalid_argument"},
		{"history page over the maximum", "GET", convURL + "/messages?limit=100000", "", 400, "invalid_argument"},
		{"negative read watermark", "POST", convURL + "/read", `{"seq":-1}`, 400, "invalid_argument"},
		{"unknown route", "GET", n.URL + "/v1/nothing-here", "", 404, "not_found"},
		{"unknown sub-route", "POST", convURL + "/reactions", `{}`, 404, "not_found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := rawRequest(t, c.method, c.url, token, c.body)
			if status != c.status || errorCode(body) != c.code {
				t.Fatalf("%s %s: %d %.300s, want %d %s", c.method, strings.TrimPrefix(c.url, n.URL), status, body, c.status, c.code)
			}
		})
	}

	// Exactly 16 KiB is allowed, in ASCII and in multi-byte characters.
	maxASCII := strings.Repeat("x", 16<<10)
	if status, body := rawRequest(t, "POST", convURL+"/messages", token, send("max-ascii", maxASCII)); status != http.StatusCreated {
		t.Fatalf("a text of exactly 16 KiB: %d %.300s, want 201", status, body)
	}
	maxEuro := strings.Repeat("€", 5461) + "x" // 3*5461+1 = 16384 bytes
	if status, body := rawRequest(t, "POST", convURL+"/messages", token, send("max-euro", maxEuro)); status != http.StatusCreated {
		t.Fatalf("a text of exactly 16 KiB of multi-byte characters: %d %.300s, want 201", status, body)
	}
	// And nothing that was refused was stored, or stored altered.
	msgs := historyAfter(t, alice, conv.ID, 0)
	if len(msgs) != 2 || msgs[0].Text != maxASCII || msgs[1].Text != maxEuro {
		var ids []string
		for _, m := range msgs {
			ids = append(ids, fmt.Sprintf("%s (%d bytes)", m.ClientID, len(m.Text)))
		}
		t.Fatalf("history holds %v, want only the two 16 KiB texts, intact", ids)
	}
}

func TestBadInput_WebSocket(t *testing.T) {
	n := startNode(t, "", func(c *app.Config) { c.AllowedOrigins = []string{"https://chat.example"} })
	alice, aliceID := n.user(t, "alice")
	bob, bobID := n.user(t, "bob")
	conv, err := alice.CreateDirect(ctxT(t), bobID)
	if err != nil {
		t.Fatal(err)
	}
	token := alice.Tokens().AccessToken
	bobConn, bobIn := connect(t, bob) // a bystander, who must notice nothing
	var acked []client.Message

	ws := dialRaw(t, n, rawOptions{token: token})
	if f := ws.next(t); f.Type != "ready" || f.User != aliceID {
		t.Fatalf("first frame %s for user %s, want ready for %s", f.Type, f.User, aliceID)
	}
	sendOK := func(t *testing.T, ref string) {
		t.Helper()
		ws.send(t, fmt.Sprintf(`{"type":"send","ref":%q,"conv":%q,"client_id":%q,"text":"still here"}`, ref, conv.ID, ref))
		f := ws.next(t, "ack", "error")
		m, err := f.Msg()
		if f.Type != "ack" || string(f.Ref) != fmt.Sprintf("%q", ref) || err != nil || m == nil {
			t.Fatalf("a valid send after bad frames got %s %s (ref %s), want an ack for %s", f.Type, f.Code, f.Ref, ref)
		}
		acked = append(acked, *m)
	}
	sendOK(t, "first")

	bad := []struct {
		name, frame, code, ref string
	}{
		{"not JSON", `hello?`, "invalid_json", ""},
		{"truncated JSON", `{"type":"send","conv":`, "invalid_json", ""},
		{"unknown type", `{"type":"dance","ref":"u1"}`, "unknown_type", `"u1"`},
		{"no type", `{"ref":7}`, "unknown_type", `7`},
		{"ref that is an object", `{"type":"ping","ref":{"a":1}}`, "invalid_argument", ""},
		{"ref that is too long", fmt.Sprintf(`{"type":"ping","ref":%q}`, strings.Repeat("r", 80)), "invalid_argument", ""},
		{"text over 16 KiB", fmt.Sprintf(`{"type":"send","ref":"big","conv":%q,"client_id":"big","text":%q}`, conv.ID, strings.Repeat("x", 16<<10+1)), "too_large", `"big"`},
		{"empty client_id", fmt.Sprintf(`{"type":"send","ref":"e","conv":%q,"text":"hi"}`, conv.ID), "invalid_argument", `"e"`},
		{"empty text", fmt.Sprintf(`{"type":"send","ref":"t","conv":%q,"client_id":"t"}`, conv.ID), "invalid_argument", `"t"`},
		{"non-numeric conv", `{"type":"send","ref":"c","conv":"general","client_id":"c","text":"hi"}`, "invalid_argument", `"c"`},
		{"negative sync cursor", fmt.Sprintf(`{"type":"sync","ref":"s","conv":%q,"after":-1}`, conv.ID), "invalid_argument", `"s"`},
		{"sync page over the maximum", fmt.Sprintf(`{"type":"sync","ref":"l","conv":%q,"limit":100000}`, conv.ID), "invalid_argument", `"l"`},
		{"negative read watermark", fmt.Sprintf(`{"type":"read","ref":"w","conv":%q,"seq":-3}`, conv.ID), "invalid_argument", `"w"`},
		{"a second auth", fmt.Sprintf(`{"type":"auth","ref":"a","token":%q}`, token), "invalid_argument", `"a"`},
	}
	for i, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			ws.send(t, b.frame)
			f := ws.next(t, "error", "ack", "pong", "messages")
			if f.Type != "error" || f.Code != b.code || string(f.Ref) != b.ref {
				t.Fatalf("answered %s %s (ref %s), want error %s (ref %s)", f.Type, f.Code, f.Ref, b.code, b.ref)
			}
			sendOK(t, fmt.Sprintf("after-%d", i)) // the connection is still usable
		})
	}
	t.Run("binary frame", func(t *testing.T) {
		if err := ws.socket.WriteMessage(gws.OpcodeBinary, []byte(`{"type":"ping","ref":1}`)); err != nil {
			t.Fatal(err)
		}
		if f := ws.next(t, "error", "pong"); f.Type != "error" || f.Code != "invalid_json" {
			t.Fatalf("binary frame answered %s %s, want error invalid_json", f.Type, f.Code)
		}
		sendOK(t, "after-binary")
	})

	t.Run("frame over 64 KiB", func(t *testing.T) {
		big := dialRaw(t, n, rawOptions{token: token})
		big.next(t, "ready")
		// The server may give up on the frame before it is all written: a
		// write error here is fine, the close code is what matters.
		_ = big.socket.WriteMessage(gws.OpcodeText, fmt.Appendf(nil, `{"type":"send","conv":%q,"client_id":"huge","text":%q}`, conv.ID, strings.Repeat("x", 65<<10)))
		if code := big.closeCode(t); code != 1009 {
			t.Fatalf("closed with %d, want 1009 (message too big)", code)
		}
	})
	t.Run("invalid UTF-8 in a text frame", func(t *testing.T) {
		raw := dialRaw(t, n, rawOptions{token: token})
		raw.next(t, "ready")
		raw.send(t, fmt.Sprintf("{\"type\":\"send\",\"conv\":%q,\"client_id\":\"utf8\",\"text\":\"bad \xff byte\"}", conv.ID))
		if code := raw.closeCode(t); code != 1007 {
			t.Fatalf("closed with %d, want 1007 (invalid frame payload data)", code)
		}
	})
	t.Run("frame before authenticating", func(t *testing.T) {
		anon := dialRaw(t, n, rawOptions{})
		anon.send(t, fmt.Sprintf(`{"type":"send","conv":%q,"client_id":"anon","text":"hi"}`, conv.ID))
		if code := anon.closeCode(t); code != client.CloseUnauthenticated {
			t.Fatalf("closed with %d, want %d", code, client.CloseUnauthenticated)
		}
	})
	t.Run("auth frame for browsers", func(t *testing.T) {
		browser := dialRaw(t, n, rawOptions{origin: n.URL})
		browser.send(t, fmt.Sprintf(`{"type":"auth","ref":"hello","token":%q}`, token))
		if f := browser.next(t); f.Type != "ready" || f.User != aliceID || f.Session != alice.Tokens().SessionID {
			t.Fatalf("auth frame answered %s for user %s session %s, want ready for %s", f.Type, f.User, f.Session, aliceID)
		}
		browser.send(t, fmt.Sprintf(`{"type":"send","ref":1,"conv":%q,"client_id":"from-browser","text":"typed in a tab"}`, conv.ID))
		f := browser.next(t, "ack", "error")
		m, _ := f.Msg()
		if f.Type != "ack" || m == nil || m.ClientID != "from-browser" {
			t.Fatalf("a send after the auth frame answered %s %s", f.Type, f.Code)
		}
		acked = append(acked, *m)
	})
	t.Run("origins", func(t *testing.T) {
		for origin, want := range map[string]int{
			n.URL:                          http.StatusSwitchingProtocols, // the server's own
			"https://chat.example":         http.StatusSwitchingProtocols, // configured
			"https://evil.example":         http.StatusForbidden,
			"http://chat.example.evil.com": http.StatusForbidden,
			n.URL + ".evil.com":            http.StatusForbidden,
			"null":                         http.StatusForbidden,
		} {
			status, body := upgrade(t, n, map[string]string{"Origin": origin, "Authorization": "Bearer " + token})
			if status != want {
				t.Errorf("upgrade from origin %s: %d %s, want %d", origin, status, body, want)
			}
			if want == http.StatusForbidden && errorCode(body) != "forbidden" {
				t.Errorf("upgrade from origin %s answered %s, want error code forbidden", origin, body)
			}
		}
	})

	// After all that, every acknowledged message is stored, and the
	// bystander got each of them live, in order, over a healthy connection.
	stored := historyAfter(t, alice, conv.ID, 0)
	for _, m := range acked {
		if !slices.ContainsFunc(stored, func(s client.Message) bool { return s.ID == m.ID && s.Seq == m.Seq && s.Text == m.Text }) {
			t.Errorf("acknowledged message %s (seq %d) is not in history", m.ClientID, m.Seq)
		}
	}
	if len(stored) != len(acked) {
		t.Errorf("history holds %d messages, %d were acknowledged: a refused frame stored something", len(stored), len(acked))
	}
	got := bobIn.waitFor(t, "every acknowledged message", func(ms []client.Message) bool { return len(ms) >= len(acked) })
	for i, m := range got {
		if m.Seq != int64(i+1) {
			t.Fatalf("the bystander's message %d has seq %d", i, m.Seq)
		}
	}
	pingCtx, cancel := context.WithTimeout(ctxT(t), 5*time.Second)
	defer cancel()
	if err := bobConn.Ping(pingCtx); err != nil {
		t.Fatalf("the bystander's connection broke: %v", err)
	}
}

func TestBadInput_WebSocketThatNeverAuthenticatesIsDropped(t *testing.T) {
	n := startNode(t, "", func(c *app.Config) { c.WS.AuthTimeout = 300 * time.Millisecond })
	idle := dialRaw(t, n, rawOptions{})
	start := time.Now()
	code := idle.closeCode(t)
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("an unauthenticated connection lived %v with a 300ms AuthTimeout", took)
	}
	if code != client.CloseUnauthenticated {
		t.Errorf("an unauthenticated connection that timed out was closed with %d, want %d (no valid token in time)", code, client.CloseUnauthenticated)
	}
}
