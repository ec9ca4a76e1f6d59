package app_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/internal/auth"
	"github.com/natter-chat/natter/internal/chat"
)

// noSuchConv is a well-formed conversation id that no conversation has.
const noSuchConv = "999999999"

// authzWorld is a group seen from every kind of caller: its owner, a
// member, a former member, a stranger, and bearers of bad tokens.
type authzWorld struct {
	n                                               *node
	conv                                            string
	owner, member, removed, stranger                *client.Client
	ownerID, memberID, removedID, victimID, extraID string
	// Tokens for the member's live session that must all be refused.
	garbage, forged, algNone, expired string
}

func newAuthzWorld(t *testing.T) *authzWorld {
	t.Helper()
	w := &authzWorld{n: startNode(t, "")}
	w.owner, w.ownerID = w.n.user(t, "owner")
	w.member, w.memberID = w.n.user(t, "member")
	w.removed, w.removedID = w.n.user(t, "removed")
	w.stranger, _ = w.n.user(t, "stranger")
	_, w.victimID = w.n.user(t, "victim")
	_, w.extraID = w.n.user(t, "extra")
	conv, err := w.owner.CreateGroup(ctxT(t), "private plans", []string{w.memberID, w.removedID, w.victimID})
	if err != nil {
		t.Fatal(err)
	}
	w.conv = conv.ID
	if _, err := w.owner.Send(ctxT(t), w.conv, "setup-1", "the secret"); err != nil {
		t.Fatal(err)
	}
	if err := w.owner.RemoveMember(ctxT(t), w.conv, w.removedID); err != nil {
		t.Fatal(err)
	}

	key, err := auth.LoadOrCreateKey(w.n.Dir)
	if err != nil {
		t.Fatal(err)
	}
	sess := w.member.Tokens().SessionID
	w.garbage = "not-a-token"
	w.expired = mintToken(t, key, w.memberID, sess, time.Now().Add(-time.Hour))
	_, otherKey, _ := ed25519.GenerateKey(nil)
	w.forged = mintToken(t, otherKey, w.memberID, sess, time.Now())
	w.algNone = unsignedToken(t, key, w.memberID, sess)
	return w
}

// mintToken signs an access token for a user's session with key, as a
// node whose clock reads now would.
func mintToken(t testing.TB, key ed25519.PrivateKey, user, session string, now time.Time) string {
	t.Helper()
	u, _ := strconv.ParseInt(user, 10, 64)
	s, _ := strconv.ParseInt(session, 10, 64)
	tok, _, err := auth.NewTokens(key, auth.TokenOptions{Now: func() time.Time { return now }}).Issue(chat.UserID(u), chat.SessionID(s))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// unsignedToken is a well-formed, current access token with alg "none"
// that names the node's real key.
func unsignedToken(t testing.TB, key ed25519.PrivateKey, user, session string) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	now := time.Now().Unix()
	header := map[string]string{"alg": "none", "typ": "JWT", "kid": auth.KeyID(key.Public().(ed25519.PublicKey))}
	claims := map[string]any{"iss": auth.DefaultIssuer, "aud": []string{auth.Audience}, "sub": user, "sid": session, "iat": now, "exp": now + 600, "jti": "x"}
	return enc(header) + "." + enc(claims) + "."
}

type authzCaller struct {
	name  string
	token func(w *authzWorld) string
	// want is "owner", "member", "outsider" (not_found) or an
	// authentication error code (401).
	want string
}

var authzCallers = []authzCaller{
	{"owner", func(w *authzWorld) string { return w.owner.Tokens().AccessToken }, "owner"},
	{"member", func(w *authzWorld) string { return w.member.Tokens().AccessToken }, "member"},
	{"removed member", func(w *authzWorld) string { return w.removed.Tokens().AccessToken }, "outsider"},
	{"stranger", func(w *authzWorld) string { return w.stranger.Tokens().AccessToken }, "outsider"},
	{"no token", func(w *authzWorld) string { return "" }, "unauthenticated"},
	{"garbage token", func(w *authzWorld) string { return w.garbage }, "unauthenticated"},
	{"token signed by another key", func(w *authzWorld) string { return w.forged }, "unauthenticated"},
	{"unsigned alg none token", func(w *authzWorld) string { return w.algNone }, "unauthenticated"},
	{"expired token", func(w *authzWorld) string { return w.expired }, "token_expired"},
}

func TestAuthz_RESTConversationRoutes(t *testing.T) {
	w := newAuthzWorld(t)
	sends := 0
	routes := []struct {
		name, method, path string // path is appended to /v1/conversations/{id}
		body               func() string
		ownerStatus        int
		memberStatus       int // the owner's status, or 403 for an admin action
		prepare            func(t *testing.T)
	}{
		{name: "get conversation", method: "GET", path: "", ownerStatus: 200, memberStatus: 200},
		{name: "history", method: "GET", path: "/messages?after=0", ownerStatus: 200, memberStatus: 200},
		{name: "send", method: "POST", path: "/messages", ownerStatus: 201, memberStatus: 201,
			body: func() string { sends++; return fmt.Sprintf(`{"client_id":"matrix-%d","text":"matrix"}`, sends) }},
		{name: "add members", method: "POST", path: "/members", ownerStatus: 200, memberStatus: 403,
			body: func() string { return fmt.Sprintf(`{"members":[%q]}`, w.extraID) }},
		{name: "remove member", method: "DELETE", path: "/members/" + w.victimID, ownerStatus: 204, memberStatus: 403,
			prepare: func(t *testing.T) { // the victim must be a member for the answer to be about permission
				if _, err := w.owner.AddMembers(ctxT(t), w.conv, []string{w.victimID}); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "mark read", method: "POST", path: "/read", ownerStatus: 200, memberStatus: 200,
			body: func() string { return `{"seq":1}` }},
	}
	for _, r := range routes {
		for _, c := range authzCallers {
			t.Run(r.name+"/"+c.name, func(t *testing.T) {
				if r.prepare != nil {
					r.prepare(t)
				}
				body := ""
				if r.body != nil {
					body = r.body()
				}
				token := c.token(w)
				status, got := rawRequest(t, r.method, w.n.URL+"/v1/conversations/"+w.conv+r.path, token, body)
				switch c.want {
				case "owner", "member":
					want := r.ownerStatus
					if c.want == "member" {
						want = r.memberStatus
					}
					if status != want {
						t.Fatalf("%s %s as %s: %d %s, want %d", r.method, r.path, c.name, status, got, want)
					}
					if want == http.StatusForbidden && errorCode(got) != "forbidden" {
						t.Fatalf("member doing an admin action got code %q, want forbidden", errorCode(got))
					}
				case "outsider":
					if status != http.StatusNotFound || errorCode(got) != "not_found" {
						t.Fatalf("%s as %s: %d %s, want 404 not_found", r.name, c.name, status, got)
					}
					// The same answer as for a conversation that does not exist:
					// nothing tells an outsider that this one does.
					st2, none := rawRequest(t, r.method, w.n.URL+"/v1/conversations/"+noSuchConv+r.path, token, body)
					if st2 != status || none != got {
						t.Fatalf("%s as %s: an existing conversation answers %d %s but a missing one %d %s", r.name, c.name, status, got, st2, none)
					}
				default:
					if status != http.StatusUnauthorized || errorCode(got) != c.want {
						t.Fatalf("%s with %s: %d %s, want 401 %s", r.name, c.name, status, got, c.want)
					}
				}
			})
		}
	}

	// Only the owner's and the member's sends were stored, and the removed
	// member did not get back in.
	msgs := historyAfter(t, w.owner, w.conv, 0)
	var texts []string
	for _, m := range msgs {
		texts = append(texts, m.ClientID)
	}
	if len(msgs) != 3 || msgs[1].ClientID != "matrix-1" || msgs[2].ClientID != "matrix-2" {
		t.Fatalf("history after the matrix holds %v, want setup-1, matrix-1 (owner), matrix-2 (member)", texts)
	}
	if msgs[1].Sender != w.ownerID || msgs[2].Sender != w.memberID {
		t.Fatalf("matrix-1 and matrix-2 were sent by %s and %s, want the owner and the member", msgs[1].Sender, msgs[2].Sender)
	}
	conv, err := w.owner.Conversation(ctxT(t), w.conv)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range conv.Members {
		if m.User == w.removedID {
			t.Fatalf("the removed member is back in the group: %+v", conv.Members)
		}
	}
}

func TestAuthz_WebSocketFrames(t *testing.T) {
	w := newAuthzWorld(t)
	frames := []struct {
		name string
		do   func(c *client.Conn, conv string) error
	}{
		{"send", func(c *client.Conn, conv string) error {
			_, _, err := c.Send(ctxT(t), conv, fmt.Sprintf("ws-%d", time.Now().UnixNano()), "over the socket")
			return err
		}},
		{"read", func(c *client.Conn, conv string) error { _, err := c.MarkRead(ctxT(t), conv, 1); return err }},
		{"sync", func(c *client.Conn, conv string) error { _, _, err := c.Sync(ctxT(t), conv, 0, 10); return err }},
	}
	conns := map[string]*client.Conn{}
	for name, c := range map[string]*client.Client{"owner": w.owner, "member": w.member, "removed member": w.removed, "stranger": w.stranger} {
		conns[name], _ = connect(t, c)
	}
	for _, f := range frames {
		for _, c := range authzCallers {
			if conns[c.name] == nil && c.token(w) != "" {
				continue // a bad token gets no connection to send frames on: see upgrade/ below
			}
			t.Run(f.name+"/"+c.name, func(t *testing.T) {
				switch c.want {
				case "owner", "member":
					if err := f.do(conns[c.name], w.conv); err != nil {
						t.Fatalf("%s frame as %s: %v", f.name, c.name, err)
					}
				case "outsider":
					err := f.do(conns[c.name], w.conv)
					var got *client.Error
					if !errors.As(err, &got) || got.Code != "not_found" {
						t.Fatalf("%s frame as %s: %v, want not_found", f.name, c.name, err)
					}
					var missing *client.Error
					if errMissing := f.do(conns[c.name], noSuchConv); !errors.As(errMissing, &missing) || missing.Code != got.Code || missing.Message != got.Message {
						t.Fatalf("%s frame as %s: an existing conversation answers %v but a missing one %v", f.name, c.name, err, errMissing)
					}
				default:
					authzUnauthenticatedFrame(t, w, f.name)
				}
			})
		}
	}
	for _, c := range authzCallers {
		if conns[c.name] != nil || c.token(w) == "" {
			continue
		}
		t.Run("upgrade/"+c.name, func(t *testing.T) { authzBadTokenRefused(t, w, c) })
	}
	// Only the owner's and the member's sends were stored.
	msgs := historyAfter(t, w.owner, w.conv, 0)
	if len(msgs) != 3 || msgs[1].Sender != w.ownerID || msgs[2].Sender != w.memberID {
		t.Fatalf("history holds %+v, want the setup message and one WebSocket send each from the owner and the member", msgs)
	}
}

// authzBadTokenRefused checks that a bad token opens no WebSocket, whether
// it comes in the Authorization header or in a browser's auth frame.
func authzBadTokenRefused(t *testing.T, w *authzWorld, c authzCaller) {
	token := c.token(w)
	status, body := upgrade(t, w.n, map[string]string{"Authorization": "Bearer " + token})
	if status != http.StatusUnauthorized || errorCode(body) != c.want {
		t.Fatalf("upgrade with %s: %d %s, want 401 %s", c.name, status, body, c.want)
	}
	ws := dialRaw(t, w.n, rawOptions{})
	ws.send(t, fmt.Sprintf(`{"type":"auth","ref":"a1","token":%q}`, token))
	f := ws.next(t)
	if f.Type != "error" || f.Code != c.want || string(f.Ref) != `"a1"` {
		t.Fatalf("auth frame with %s answered %s %s (ref %s), want an error %s for ref a1", c.name, f.Type, f.Code, f.Ref, c.want)
	}
	if code := ws.closeCode(t); code != client.CloseUnauthenticated {
		t.Fatalf("after a refused auth frame the connection closed with %d, want %d", code, client.CloseUnauthenticated)
	}
}

// authzUnauthenticatedFrame checks that a connection that never
// authenticated is closed by its first frame that is not auth, unanswered.
func authzUnauthenticatedFrame(t *testing.T, w *authzWorld, frame string) {
	ws := dialRaw(t, w.n, rawOptions{})
	ws.send(t, fmt.Sprintf(`{"type":%q,"ref":"r1","conv":%q,"client_id":"sneaky","text":"hi","seq":1}`, frame, w.conv))
	if code := ws.closeCode(t); code != client.CloseUnauthenticated {
		t.Fatalf("an unauthenticated %s frame closed the connection with %d, want %d", frame, code, client.CloseUnauthenticated)
	}
	for len(ws.frames) > 0 {
		if b := <-ws.frames; !strings.Contains(string(b), `"type":"error"`) {
			t.Fatalf("an unauthenticated %s frame was answered with %s", frame, b)
		}
	}
}

func TestAuthz_RemovedMemberStopsReceivingAtOnce(t *testing.T) {
	n := startNode(t, "")
	owner, _ := n.user(t, "owner")
	leaver, leaverID := n.user(t, "leaver")
	group, err := owner.CreateGroup(ctxT(t), "team", []string{leaverID})
	if err != nil {
		t.Fatal(err)
	}
	direct, err := owner.CreateDirect(ctxT(t), leaverID) // the leaver stays in this one
	if err != nil {
		t.Fatal(err)
	}
	conn, before := connect(t, leaver)
	if _, err := owner.Send(ctxT(t), group.ID, "before", "before the removal"); err != nil {
		t.Fatal(err)
	}
	before.waitFor(t, "the message sent before the removal", func(ms []client.Message) bool { return len(ms) >= 1 })

	if err := owner.RemoveMember(ctxT(t), group.ID, leaverID); err != nil {
		t.Fatal(err)
	}
	_, after := connect(t, leaver) // a device that connects after the removal
	for i := range 3 {
		if _, err := owner.Send(ctxT(t), group.ID, fmt.Sprintf("after-%d", i), "after the removal"); err != nil {
			t.Fatal(err)
		}
	}
	// Events reach a connection in order: once this arrives, anything sent
	// to the group before it would have arrived too.
	if _, err := owner.Send(ctxT(t), direct.ID, "sentinel", "still talking here"); err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string]*inbox{"the connection open during the removal": before, "a connection opened after it": after} {
		got := in.waitFor(t, "the sentinel in the direct conversation", func(ms []client.Message) bool {
			return slices.ContainsFunc(ms, func(m client.Message) bool { return m.ClientID == "sentinel" })
		})
		for _, m := range got {
			if m.Conv == group.ID && m.Seq > 1 {
				t.Errorf("%s received %q (seq %d) from the group after being removed from it", name, m.Text, m.Seq)
			}
		}
	}
	if !slices.ContainsFunc(before.frames(), func(f client.ServerFrame) bool {
		return f.Type == client.TypeMemberGone && f.Conv == group.ID && slices.Contains(f.Users, leaverID)
	}) {
		t.Errorf("the open connection was not told that its user left the group")
	}

	// Nor can the former member read what was said since, by any path.
	if _, _, err := conn.Sync(ctxT(t), group.ID, 0, 100); client.ErrorCode(err) != "not_found" {
		t.Errorf("sync of the group after removal: %v, want not_found", err)
	}
	if page, err := leaver.History(ctxT(t), group.ID, client.HistoryQuery{Forward: true}); client.ErrorCode(err) != "not_found" {
		t.Errorf("history of the group after removal: %d messages, %v; want not_found", len(page.Messages), err)
	}
	list, err := leaver.Conversations(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range list {
		if c.ID == group.ID {
			t.Errorf("the group is still in the former member's list (last message %+v)", c.LastMessage)
		}
	}
}

func TestAuthz_RevokedSessionCannotUseItsToken(t *testing.T) {
	n := startNode(t, "")
	phone, _ := n.user(t, "owner")
	me, err := phone.Me(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	laptop := client.New(n.URL, client.Options{Device: "laptop"})
	if _, err := laptop.Login(ctxT(t), me.Username, "a long enough passphrase"); err != nil {
		t.Fatal(err)
	}
	if err := phone.RevokeSession(ctxT(t), laptop.Tokens().SessionID); err != nil {
		t.Fatalf("revoking the laptop's session: %v", err)
	}
	assertTokenDead(t, n, laptop.Tokens().AccessToken, "a session revoked from another device")
	if _, err := laptop.Refresh(ctxT(t)); client.ErrorCode(err) != "unauthenticated" {
		t.Errorf("refreshing a revoked session: %v, want unauthenticated", err)
	}
	if _, err := phone.Me(ctxT(t)); err != nil {
		t.Fatalf("revoking the laptop signed the phone out too: %v", err)
	}

	token := phone.Tokens().AccessToken
	if err := phone.Logout(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	assertTokenDead(t, n, token, "a session that logged out")
}

// assertTokenDead checks that an access token opens nothing: no REST
// call, no WebSocket by header, no WebSocket by auth frame.
func assertTokenDead(t *testing.T, n *node, token, what string) {
	t.Helper()
	if status, body := rawRequest(t, "GET", n.URL+"/v1/users/me", token, ""); status != http.StatusUnauthorized || errorCode(body) != "unauthenticated" {
		t.Errorf("REST with the access token of %s: %d %s, want 401 unauthenticated", what, status, body)
	}
	if status, body := rawRequest(t, "GET", n.URL+"/v1/conversations", token, ""); status != http.StatusUnauthorized {
		t.Errorf("listing conversations with the access token of %s: %d %s, want 401", what, status, body)
	}
	if status, body := upgrade(t, n, map[string]string{"Authorization": "Bearer " + token}); status != http.StatusUnauthorized || errorCode(body) != "unauthenticated" {
		t.Errorf("WebSocket upgrade with the access token of %s: %d %s, want 401 unauthenticated", what, status, body)
	}
	ws := dialRaw(t, n, rawOptions{})
	ws.send(t, fmt.Sprintf(`{"type":"auth","token":%q}`, token))
	if f := ws.next(t); f.Type != "error" || f.Code != "unauthenticated" {
		t.Errorf("auth frame with the access token of %s answered %s %s, want error unauthenticated", what, f.Type, f.Code)
	}
	if code := ws.closeCode(t); code != client.CloseUnauthenticated {
		t.Errorf("auth frame with the access token of %s: closed with %d, want %d", what, code, client.CloseUnauthenticated)
	}
}

func TestAuthz_RevokedSessionLosesItsOpenWebSocket(t *testing.T) {
	n := startNode(t, "")
	phone, phoneID := n.user(t, "owner")
	_, friendID := n.user(t, "friend")
	conv, err := phone.CreateDirect(ctxT(t), friendID)
	if err != nil {
		t.Fatal(err)
	}
	me, err := phone.Me(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	stolen := client.New(n.URL, client.Options{Device: "stolen laptop"})
	if _, err := stolen.Login(ctxT(t), me.Username, "a long enough passphrase"); err != nil {
		t.Fatal(err)
	}
	ws, _ := connect(t, stolen)
	if err := phone.RevokeSession(ctxT(t), stolen.Tokens().SessionID); err != nil {
		t.Fatal(err)
	}
	// The user signed the stolen laptop out: its open connection must end
	// (CloseSessionRevoked) rather than keep reading and posting as them.
	select {
	case <-ws.Done():
	case <-time.After(20 * time.Second):
	}
	if code := ws.CloseCode(); code != client.CloseSessionRevoked {
		msg, _, sendErr := ws.Send(ctxT(t), conv.ID, "after-revoke", "posted by a revoked session")
		t.Fatalf("20s after its session was revoked the WebSocket has close code %d, want %d; a send over it then gave %v (stored as seq %d from %s, the user is %s)",
			code, client.CloseSessionRevoked, sendErr, msg.Seq, msg.Sender, phoneID)
	}
}
