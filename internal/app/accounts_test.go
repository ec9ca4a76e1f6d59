package app_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/natter-chat/natter/client"
)

const goodPassword = "a long enough passphrase"

// credentials is a JSON body for POST /v1/accounts and POST /v1/sessions.
func credentials(username, password string) string {
	b, _ := json.Marshal(client.CredentialsRequest{Username: username, Password: password})
	return string(b)
}

func uniqueName(prefix string) string { return fmt.Sprintf("%s%d", prefix, userSeq.Add(1)) }

func TestAccounts_Register(t *testing.T) {
	n := startNode(t, "")
	name := uniqueName("Carol")
	start := time.Now()
	status, body := rawRequest(t, "POST", n.URL+"/v1/accounts", "", credentials(name, goodPassword))
	if status != http.StatusCreated {
		t.Fatalf("register: %d %s, want 201", status, body)
	}
	var a client.AuthResponse
	if err := json.Unmarshal([]byte(body), &a); err != nil {
		t.Fatalf("register answered %s: %v", body, err)
	}
	if id, err := strconv.ParseInt(a.User.ID, 10, 64); err != nil || id <= 0 {
		t.Errorf("user id %q is not a positive id in a string", a.User.ID)
	}
	if a.User.Username != strings.ToLower(name) {
		t.Errorf("username stored as %q, want %q (lower case)", a.User.Username, strings.ToLower(name))
	}
	if a.User.CreatedAt.Before(start.Add(-time.Minute)) || a.User.CreatedAt.After(time.Now().Add(time.Minute)) {
		t.Errorf("created_at %v is not about now", a.User.CreatedAt)
	}
	if a.SessionID == "" || a.AccessToken == "" || a.RefreshToken == "" || a.AccessToken == a.RefreshToken {
		t.Errorf("registration did not start a session: %+v", a)
	}
	if ttl := time.Until(a.AccessExpiresAt); ttl <= time.Minute || ttl > time.Hour {
		t.Errorf("access token expires in %v, want a short lifetime (minutes)", ttl)
	}
	if strings.Contains(body, goodPassword) || strings.Contains(strings.ToLower(body), "hash") {
		t.Errorf("the registration answer leaks the password or its hash: %s", body)
	}
	// The tokens work at once.
	status, me := rawRequest(t, "GET", n.URL+"/v1/users/me", a.AccessToken, "")
	if status != http.StatusOK || !strings.Contains(me, a.User.ID) {
		t.Fatalf("GET /v1/users/me with the new token: %d %s", status, me)
	}

	cases := []struct {
		name, username, password string
		status                   int
		code                     string
	}{
		{"the same name taken again", name, goodPassword, 409, "username_taken"},
		{"the same name in another case", strings.ToUpper(name), goodPassword, 409, "username_taken"},
		{"too short a name", "ab", goodPassword, 400, "invalid_username"},
		{"too long a name", strings.Repeat("a", 33), goodPassword, 400, "invalid_username"},
		{"a name starting with a dash", "-" + uniqueName("x"), goodPassword, 400, "invalid_username"},
		{"a name with a space", "carol " + uniqueName("x"), goodPassword, 400, "invalid_username"},
		{"a name with non-ASCII letters", "zoë" + uniqueName("x"), goodPassword, 400, "invalid_username"},
		{"an empty name", "", goodPassword, 400, "invalid_username"},
		{"a password too short", uniqueName("dave"), "short1!", 400, "weak_password"},
		{"a common password", uniqueName("dave"), "password123", 400, "weak_password"},
		{"one character repeated", uniqueName("dave"), "aaaaaaaaaaaa", 400, "weak_password"},
		{"a password containing the name", "erin", "erin-is-great-123", 400, "weak_password"},
		{"a password over 256 bytes", uniqueName("dave"), strings.Repeat("ab", 129), 400, "weak_password"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := rawRequest(t, "POST", n.URL+"/v1/accounts", "", credentials(c.username, c.password))
			if status != c.status || errorCode(body) != c.code {
				t.Fatalf("register %q: %d %s, want %d %s", c.username, status, body, c.status, c.code)
			}
		})
	}
	// None of the refused registrations created an account.
	for _, c := range cases[2:] {
		if status, _ := rawRequest(t, "POST", n.URL+"/v1/sessions", "", credentials(c.username, c.password)); status == http.StatusOK {
			t.Errorf("a refused registration (%s) can log in", c.name)
		}
	}
}

func TestAccounts_Login(t *testing.T) {
	n := startNode(t, "")
	c, id := n.user(t, "frank")
	me, err := c.Me(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	status, body := rawRequest(t, "POST", n.URL+"/v1/sessions", "", credentials(strings.ToUpper(me.Username), goodPassword))
	if status != http.StatusOK {
		t.Fatalf("login with the right password (name in upper case): %d %s", status, body)
	}
	var a client.AuthResponse
	if err := json.Unmarshal([]byte(body), &a); err != nil || a.User.ID != id || a.AccessToken == "" || a.SessionID == c.Tokens().SessionID {
		t.Fatalf("login answered %s (%v), want a new session of user %s", body, err, id)
	}

	wrongStatus, wrong := rawRequest(t, "POST", n.URL+"/v1/sessions", "", credentials(me.Username, "not the passphrase"))
	unknownStatus, unknown := rawRequest(t, "POST", n.URL+"/v1/sessions", "", credentials(uniqueName("nobody"), goodPassword))
	if wrongStatus != 401 || errorCode(wrong) != "invalid_credentials" {
		t.Errorf("wrong password: %d %s, want 401 invalid_credentials", wrongStatus, wrong)
	}
	// An unknown user gets the very same answer: logins do not reveal who
	// has an account.
	if unknownStatus != wrongStatus || unknown != wrong {
		t.Errorf("unknown user: %d %s; wrong password: %d %s; want the same answer", unknownStatus, unknown, wrongStatus, wrong)
	}
}

func TestAccounts_RefreshRotatesAndReuseRevokesTheLogin(t *testing.T) {
	n := startNode(t, "")
	c, _ := n.user(t, "grace")
	first := c.Tokens()
	refresh := func(token string) (int, string, client.AuthResponse) {
		status, body := rawRequest(t, "POST", n.URL+"/v1/sessions/refresh", "", fmt.Sprintf(`{"refresh_token":%q}`, token))
		var a client.AuthResponse
		if status == http.StatusOK {
			if err := json.Unmarshal([]byte(body), &a); err != nil {
				t.Fatal(err)
			}
		}
		return status, body, a
	}

	status, body, second := refresh(first.RefreshToken)
	if status != http.StatusOK || second.RefreshToken == "" || second.RefreshToken == first.RefreshToken || second.SessionID != first.SessionID {
		t.Fatalf("refresh: %d %s; want new tokens for the same session %s", status, body, first.SessionID)
	}
	if st, b := rawRequest(t, "GET", n.URL+"/v1/users/me", second.AccessToken, ""); st != http.StatusOK {
		t.Fatalf("the refreshed access token: %d %s", st, b)
	}
	status, body, third := refresh(second.RefreshToken) // the new refresh token works
	if status != http.StatusOK || third.RefreshToken == second.RefreshToken {
		t.Fatalf("refresh with the rotated token: %d %s", status, body)
	}

	// The first refresh token was used already: presenting it again means it
	// was copied, so the whole login ends.
	status, body, _ = refresh(first.RefreshToken)
	if status != http.StatusUnauthorized || errorCode(body) != "refresh_token_reused" {
		t.Fatalf("reusing a rotated refresh token: %d %s, want 401 refresh_token_reused", status, body)
	}
	status, body, _ = refresh(third.RefreshToken)
	if status != http.StatusUnauthorized || errorCode(body) != "unauthenticated" {
		t.Errorf("the newest refresh token after a reuse: %d %s, want 401 unauthenticated", status, body)
	}
	for name, tok := range map[string]string{"first": first.AccessToken, "newest": third.AccessToken} {
		if st, b := rawRequest(t, "GET", n.URL+"/v1/users/me", tok, ""); st != http.StatusUnauthorized {
			t.Errorf("the %s access token of the revoked login: %d %s, want 401", name, st, b)
		}
	}
	if status, body, _ := refresh("no-such-token"); status != http.StatusUnauthorized || errorCode(body) != "unauthenticated" {
		t.Errorf("an unknown refresh token: %d %s, want 401 unauthenticated", status, body)
	}
}

func TestAccounts_LogoutEndsOnlyThatSession(t *testing.T) {
	n := startNode(t, "")
	phone, _ := n.user(t, "heidi")
	me, err := phone.Me(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	laptop := client.New(n.URL, client.Options{Device: "laptop"})
	if _, err := laptop.Login(ctxT(t), me.Username, goodPassword); err != nil {
		t.Fatal(err)
	}
	old := laptop.Tokens()
	status, body := rawRequest(t, "DELETE", n.URL+"/v1/sessions/current", old.AccessToken, "")
	if status != http.StatusNoContent {
		t.Fatalf("logout: %d %s, want 204", status, body)
	}
	if st, b := rawRequest(t, "GET", n.URL+"/v1/users/me", old.AccessToken, ""); st != http.StatusUnauthorized || errorCode(b) != "unauthenticated" {
		t.Errorf("the access token after logout: %d %s, want 401 unauthenticated", st, b)
	}
	if st, b := rawRequest(t, "POST", n.URL+"/v1/sessions/refresh", "", fmt.Sprintf(`{"refresh_token":%q}`, old.RefreshToken)); st != http.StatusUnauthorized {
		t.Errorf("the refresh token after logout: %d %s, want 401", st, b)
	}
	if _, err := phone.Me(ctxT(t)); err != nil {
		t.Errorf("the laptop's logout ended the phone's session too: %v", err)
	}
}

func TestAccounts_ListAndRevokeSessions(t *testing.T) {
	n := startNode(t, "")
	phone, _ := n.user(t, "ivan")
	me, err := phone.Me(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	laptop := client.New(n.URL, client.Options{Device: "laptop"})
	if _, err := laptop.Login(ctxT(t), me.Username, goodPassword); err != nil {
		t.Fatal(err)
	}
	list, err := laptop.Sessions(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Fatalf("two logins list %d sessions: %+v", len(list), list)
	}
	current := map[string]bool{}
	for _, s := range list {
		current[s.ID] = s.Current
	}
	if !current[laptop.Tokens().SessionID] || current[phone.Tokens().SessionID] {
		t.Fatalf("current marks %v; want only the laptop's session %s", current, laptop.Tokens().SessionID)
	}
	for _, s := range list {
		if s.ID == laptop.Tokens().SessionID && s.Device != "laptop" {
			t.Errorf("the laptop's session names device %q", s.Device)
		}
	}

	// Someone else's session cannot be revoked, nor told apart from one that
	// does not exist.
	other, _ := n.user(t, "mallory")
	if err := other.RevokeSession(ctxT(t), phone.Tokens().SessionID); client.ErrorCode(err) != "not_found" {
		t.Fatalf("revoking another user's session: %v, want not_found", err)
	}
	if err := other.RevokeSession(ctxT(t), "999999999"); client.ErrorCode(err) != "not_found" {
		t.Fatalf("revoking a session that does not exist: %v, want not_found", err)
	}
	if _, err := phone.Me(ctxT(t)); err != nil {
		t.Fatalf("another user's revocation attempt signed the phone out: %v", err)
	}

	if err := laptop.RevokeSession(ctxT(t), phone.Tokens().SessionID); err != nil {
		t.Fatalf("revoking the phone from the laptop: %v", err)
	}
	list, err = laptop.Sessions(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != laptop.Tokens().SessionID || !list[0].Current {
		t.Fatalf("after revoking the phone the sessions are %+v, want only the laptop's", list)
	}
	if _, err := phone.Me(ctxT(t)); client.ErrorCode(err) != "unauthenticated" {
		t.Fatalf("the revoked phone: %v, want unauthenticated", err)
	}
}

func TestAccounts_LoginThrottle(t *testing.T) {
	n := startNode(t, "")
	victim, _ := n.user(t, "judy")
	me, err := victim.Me(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	bystander, _ := n.user(t, "ken")
	bme, err := bystander.Me(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}

	// Guess the victim's password until the server slows the guesser down.
	var retryAfter int
	for i := range 20 {
		req, _ := http.NewRequestWithContext(ctxT(t), "POST", n.URL+"/v1/sessions", strings.NewReader(credentials(me.Username, fmt.Sprintf("guess number %d", i))))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var eb client.ErrorBody
		_ = json.NewDecoder(res.Body).Decode(&eb)
		res.Body.Close()
		if res.StatusCode == http.StatusUnauthorized {
			continue
		}
		if res.StatusCode != http.StatusTooManyRequests || eb.Error.Code != "rate_limited" {
			t.Fatalf("guess %d: %d %+v, want 401 or 429 rate_limited", i, res.StatusCode, eb)
		}
		header, err := strconv.Atoi(res.Header.Get("Retry-After"))
		if err != nil || header < 1 || header != eb.Error.RetryAfter {
			t.Fatalf("429 with Retry-After %q and retry_after %d; want the same positive number of seconds in both", res.Header.Get("Retry-After"), eb.Error.RetryAfter)
		}
		if i < 3 {
			t.Fatalf("throttled after only %d failed logins", i)
		}
		retryAfter = header
		break
	}
	if retryAfter == 0 {
		t.Fatalf("20 wrong passwords in a row were never throttled")
	}
	// Bounded: the owner of the account is delayed, never locked out for good.
	if retryAfter > 900 {
		t.Fatalf("Retry-After is %ds, want at most 15 minutes", retryAfter)
	}

	// The same address may still log in as someone else: a few failures for
	// one name lock out neither the address nor other accounts.
	if _, err := client.New(n.URL, client.Options{}).Login(ctxT(t), bme.Username, goodPassword); err != nil {
		t.Fatalf("another user from the same address after the victim was throttled: %v", err)
	}
	if _, err := client.New(n.URL, client.Options{}).Login(ctxT(t), bme.Username, "a wrong one"); client.ErrorCode(err) != "invalid_credentials" {
		t.Fatalf("another user's wrong password: %v, want invalid_credentials (not rate_limited)", err)
	}

	// While throttled even the right password waits; once the delay is over,
	// the right password gets in.
	deadline := time.Now().Add(time.Duration(retryAfter)*time.Second + 5*time.Second)
	for {
		_, err := client.New(n.URL, client.Options{}).Login(ctxT(t), me.Username, goodPassword)
		if err == nil {
			break
		}
		if client.ErrorCode(err) != "rate_limited" {
			t.Fatalf("the right password while throttled: %v, want success or rate_limited", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the right password was still refused 5s after the Retry-After of %ds ran out: %v", retryAfter, err)
		}
		<-time.After(100 * time.Millisecond) // poll interval
	}
}

func TestUsers_SearchByPrefixPaged(t *testing.T) {
	n := startNode(t, "")
	alice, _ := n.user(t, "zed")
	for _, name := range []string{"marta", "martin", "marty", "maria"} {
		c := client.New(n.URL, client.Options{})
		if _, err := c.Register(ctxT(t), name, "a long enough passphrase"); err != nil {
			t.Fatal(err)
		}
	}
	first, err := alice.SearchUsers(ctxT(t), "MART", "", 2)
	if err != nil || len(first.Users) != 2 || first.Users[0].Username != "marta" || first.Next != "martin" {
		t.Fatalf("first page: %+v, %v", first, err)
	}
	second, err := alice.SearchUsers(ctxT(t), "mart", first.Next, 2)
	if err != nil || len(second.Users) != 1 || second.Users[0].Username != "marty" || second.Next != "" {
		t.Fatalf("second page: %+v, %v", second, err)
	}
	if _, err := alice.SearchUsers(ctxT(t), "", "", 0); client.ErrorCode(err) != "invalid_argument" {
		t.Fatalf("empty query: %v", err)
	}
	if status, _ := rawRequest(t, "GET", n.URL+"/v1/users?q=mar", "", ""); status != 401 {
		t.Fatalf("search without a token: %d, want 401", status)
	}
	u, err := alice.Me(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if status, body := rawRequest(t, "GET", n.URL+"/v1/users/"+u.ID, alice.Tokens().AccessToken, ""); status != 200 || !strings.Contains(body, `"username":"`+u.Username+`"`) {
		t.Fatalf("GET /v1/users/{id}: %d %s", status, body)
	}
}
