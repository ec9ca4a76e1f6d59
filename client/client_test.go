package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestClient_ErrorResponses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		header map[string]string
		body   string
		want   *Error
	}{{
		name: "json body gives code and message", status: 409,
		body: `{"error":{"code":"username_taken","message":"that name is taken"}}`,
		want: &Error{Op: "POST /v1/accounts", Status: 409, Code: "username_taken", Message: "that name is taken"},
	}, {
		name: "retry_after in body wins", status: 429, header: map[string]string{"Retry-After": "9"},
		body: `{"error":{"code":"rate_limited","message":"slow down","retry_after":3}}`,
		want: &Error{Op: "POST /v1/accounts", Status: 429, Code: "rate_limited", Message: "slow down", RetryAfter: 3 * time.Second},
	}, {
		name: "retry-after header fills a missing retry_after", status: 429, header: map[string]string{"Retry-After": "7"},
		body: `{"error":{"code":"rate_limited","message":"slow down"}}`,
		want: &Error{Op: "POST /v1/accounts", Status: 429, Code: "rate_limited", Message: "slow down", RetryAfter: 7 * time.Second},
	}, {
		name: "non-json body from a proxy gets a code from the status", status: 502,
		body: "<html>Bad Gateway</html>\n",
		want: &Error{Op: "POST /v1/accounts", Status: 502, Code: "unavailable", Message: "<html>Bad Gateway</html>"},
	}, {
		name: "empty body gets the status text", status: 500,
		want: &Error{Op: "POST /v1/accounts", Status: 500, Code: "internal", Message: "Internal Server Error"},
	}, {
		name: "json without a code is not trusted", status: 418, body: `{"error":{}}`,
		want: &Error{Op: "POST /v1/accounts", Status: 418, Code: "http_418", Message: `{"error":{}}`},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			}))
			t.Cleanup(srv.Close)
			c := New(srv.URL, Options{})
			_, err := c.Register(context.Background(), "alice", "pw")
			var got *Error
			if !errors.As(err, &got) {
				t.Fatalf("Register error = %v (%T), want *Error", err, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("error differs (-want +got):\n%s", diff)
			}
			if ErrorCode(err) != tc.want.Code {
				t.Errorf("ErrorCode = %q, want %q", ErrorCode(err), tc.want.Code)
			}
		})
	}
}

func TestErrorCode(t *testing.T) {
	wrapped := errors.Join(errors.New("context"), &Error{Code: "not_found"})
	for _, tc := range []struct {
		err  error
		want string
	}{{nil, ""}, {errors.New("dial tcp: refused"), ""}, {&Error{Code: "forbidden"}, "forbidden"}, {wrapped, "not_found"}, {&CloseError{Code: 4008}, ""}} {
		if got := ErrorCode(tc.err); got != tc.want {
			t.Errorf("ErrorCode(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		v    string
		want time.Duration
	}{
		{"", 0}, {"5", 5 * time.Second}, {"-1", 0}, {"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
	} {
		if got := parseRetryAfter(tc.v, now); got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tc.v, got, tc.want)
		}
	}
}

func TestNew_RejectsNonHTTPBaseURL(t *testing.T) {
	for _, base := range []string{"127.0.0.1:8080", "ws://127.0.0.1:8080", "://x"} {
		c := New(base, Options{})
		if _, err := c.Me(context.Background()); err == nil || ErrorCode(err) != "" {
			t.Errorf("Me with base %q: err = %v, want a local error", base, err)
		}
		if _, err := c.Connect(context.Background(), ConnOptions{}); err == nil {
			t.Errorf("Connect with base %q succeeded", base)
		}
	}
}

// restServer is a tiny stand-in for the REST API: it records requests
// and answers from a table of handlers.
func restServer(t testing.TB, routes map[string]http.HandlerFunc) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	for pattern, h := range routes {
		mux.HandleFunc(pattern, h)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func TestClient_UsesStoredTokenAndBuildsRequests(t *testing.T) {
	var gotQuery, gotAuth string
	var gotSend SendRequest
	srv := restServer(t, map[string]http.HandlerFunc{
		"POST /v1/sessions": func(w http.ResponseWriter, r *http.Request) {
			var req CredentialsRequest
			_ = json.NewDecoder(r.Body).Decode(&req)
			if req.Username != "alice" || req.Password != "pw" || req.Device != "laptop" {
				writeJSON(w, 401, ErrorBody{Error: ErrorDetail{Code: "invalid_credentials"}})
				return
			}
			writeJSON(w, 200, AuthResponse{User: User{ID: "1", Username: "alice"}, SessionID: "9", AccessToken: "acc", RefreshToken: "ref"})
		},
		"GET /v1/conversations/{id}/messages": func(w http.ResponseWriter, r *http.Request) {
			gotQuery, gotAuth = r.URL.RawQuery, r.Header.Get("Authorization")
			writeJSON(w, 200, MessagesResponse{Messages: []Message{{ID: "5", Conv: r.PathValue("id"), Seq: 3}}, HasMore: true})
		},
		"POST /v1/conversations/{id}/messages": func(w http.ResponseWriter, r *http.Request) {
			_ = json.NewDecoder(r.Body).Decode(&gotSend)
			writeJSON(w, 200, MessageResponse{Message: Message{ID: "5", Conv: r.PathValue("id"), ClientID: gotSend.ClientID}, Duplicate: true})
		},
		"DELETE /v1/sessions/current": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNoContent)
		},
	})
	ctx := context.Background()
	c := New(srv.URL+"/", Options{Device: "laptop"})
	if _, err := c.Login(ctx, "alice", "pw"); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Tokens{SessionID: "9", AccessToken: "acc", RefreshToken: "ref"}, c.Tokens()); diff != "" {
		t.Errorf("tokens after login (-want +got):\n%s", diff)
	}
	page, err := c.History(ctx, "42", HistoryQuery{After: 7, Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	if gotAuth != "Bearer acc" || gotQuery != "after=7&limit=50" || !page.HasMore || len(page.Messages) != 1 || page.Messages[0].Conv != "42" {
		t.Errorf("History sent auth %q query %q, got %+v", gotAuth, gotQuery, page)
	}
	res, err := c.Send(ctx, "42", "k1", "hi")
	if err != nil {
		t.Fatal(err)
	}
	if !res.Duplicate || res.Message.ClientID != "k1" || gotSend.ClientID != "k1" || gotSend.Text != "hi" || gotSend.ReplyTo != "" || len(gotSend.Attachments) != 0 {
		t.Errorf("Send sent %+v, got %+v", gotSend, res)
	}
	if err := c.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	if c.Tokens() != (Tokens{}) {
		t.Errorf("tokens after logout = %+v, want none", c.Tokens())
	}
}

func TestClient_RefreshRotatesOnceForConcurrentCallers(t *testing.T) {
	var calls atomic.Int32
	var mu sync.Mutex
	valid := "r0"
	// The first refresh is answered only once every caller has started
	// (and read the token it holds): a caller that starts after a refresh
	// has completed rightly refreshes again, so without this the test
	// would measure the scheduler.
	var started sync.WaitGroup
	started.Add(8)
	srv := restServer(t, map[string]http.HandlerFunc{
		"POST /v1/sessions/refresh": func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			started.Wait()
			time.Sleep(50 * time.Millisecond) // the last starter reaches the lock; widens, never decides, the outcome
			var req RefreshRequest
			_ = json.NewDecoder(r.Body).Decode(&req)
			mu.Lock()
			defer mu.Unlock()
			if req.RefreshToken != valid {
				writeJSON(w, 401, ErrorBody{Error: ErrorDetail{Code: "refresh_token_reused", Message: "revoked"}})
				return
			}
			valid = "r1"
			writeJSON(w, 200, AuthResponse{SessionID: "s", AccessToken: "a1", RefreshToken: "r1"})
		},
	})
	c := New(srv.URL, Options{})
	c.SetTokens(Tokens{SessionID: "s", AccessToken: "a0", RefreshToken: "r0"})

	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			started.Done()
			a, err := c.Refresh(context.Background())
			if err == nil && a.AccessToken != "a1" {
				err = errors.New("got access token " + a.AccessToken)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Refresh: %v", err)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("server saw %d refresh requests, want 1", n)
	}
	if got := c.Tokens().RefreshToken; got != "r1" {
		t.Errorf("stored refresh token = %q, want r1", got)
	}

	// Presenting the rotated-away token (e.g. restored from an old copy)
	// is the server's business; the client reports its code.
	c.SetTokens(Tokens{RefreshToken: "r0"})
	if _, err := c.Refresh(context.Background()); ErrorCode(err) != "refresh_token_reused" {
		t.Errorf("Refresh with a reused token: err = %v, want refresh_token_reused", err)
	}
}
