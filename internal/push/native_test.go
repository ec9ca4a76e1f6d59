package push

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/natter-chat/natter/internal/chat"
)

// fakeAnswer is what a fake push service answers next.
type fakeAnswer struct {
	status int
	body   string
}

func TestAPNs_Send(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	parsed, err := ParseAPNsKey(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err != nil {
		t.Fatalf("ParseAPNsKey: %v", err)
	}
	var answer fakeAnswer
	var got apnsBody
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 {
			t.Errorf("request over HTTP/%d, want HTTP/2", r.ProtoMajor)
		}
		if r.Method != http.MethodPost || r.URL.Path != "/3/device/abcdef0123" {
			t.Errorf("request %s %s, want POST /3/device/abcdef0123", r.Method, r.URL.Path)
		}
		for h, want := range map[string]string{"apns-topic": "org.natter.app", "apns-push-type": "alert", "apns-collapse-id": "conv-42"} {
			if r.Header.Get(h) != want {
				t.Errorf("%s = %q, want %q", h, r.Header.Get(h), want)
			}
		}
		token, ok := strings.CutPrefix(r.Header.Get("authorization"), "bearer ")
		claims := jwt.MapClaims{}
		tok, err := jwt.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return &key.PublicKey, nil }, jwt.WithValidMethods([]string{"ES256"}))
		if !ok || err != nil || tok.Header["kid"] != "KEY123" || claims["iss"] != "TEAM456" {
			t.Errorf("provider token %q does not verify as kid KEY123, iss TEAM456: %v", token, err)
		}
		if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
			t.Errorf("body: %v", err)
		}
		w.WriteHeader(answer.status)
		_, _ = w.Write([]byte(answer.body))
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	a, err := NewAPNs(APNsOptions{URL: srv.URL, Key: parsed, KeyID: "KEY123", TeamID: "TEAM456", Topic: "org.natter.app", Client: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	sub := chat.PushSubscription{Kind: chat.PushAPNs, Endpoint: "abcdef0123"}
	p := Payload{Conv: "42", Title: "ann", Body: "hello", Count: 2, MessageID: "9"}
	for _, c := range []struct {
		answer fakeAnswer
		check  func(error) bool
	}{
		{fakeAnswer{200, ""}, func(err error) bool { return err == nil }},
		{fakeAnswer{410, `{"reason":"Unregistered"}`}, func(err error) bool { return errors.Is(err, ErrGone) }},
		{fakeAnswer{400, `{"reason":"BadDeviceToken"}`}, func(err error) bool { return errors.Is(err, ErrGone) }},
		{fakeAnswer{429, `{"reason":"TooManyRequests"}`}, isRetry},
		{fakeAnswer{500, `{"reason":"InternalServerError"}`}, isRetry},
		{fakeAnswer{403, `{"reason":"ExpiredProviderToken"}`}, isRetry},
		{fakeAnswer{400, `{"reason":"PayloadTooLarge"}`}, isPermanent},
	} {
		answer, got = c.answer, apnsBody{}
		if err := a.Send(t.Context(), sub, p); !c.check(err) {
			t.Errorf("answer %+v: Send returned %v", c.answer, err)
		}
		if got.APS.Alert.Title != "ann" || got.APS.Alert.Body != "hello" || got.Natter != p {
			t.Errorf("answer %+v: body %+v", c.answer, got)
		}
	}
}

func isRetry(err error) bool {
	_, ok := errors.AsType[*RetryError](err)
	return ok
}

func isPermanent(err error) bool { return err != nil && !isRetry(err) && !errors.Is(err, ErrGone) }

func TestFCM_Send(t *testing.T) {
	var answer fakeAnswer
	var got fcmMessage
	var bearer string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/projects/natter-test/messages:send" {
			t.Errorf("request %s %s", r.Method, r.URL.Path)
		}
		bearer = r.Header.Get("Authorization")
		if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
			t.Errorf("body: %v", err)
		}
		w.WriteHeader(answer.status)
		_, _ = w.Write([]byte(answer.body))
	}))
	defer srv.Close()
	tokens := []string{"tok-1", "tok-2"}
	var renewals atomic.Int32
	f, err := NewFCM(FCMOptions{URL: srv.URL, Project: "natter-test", Client: srv.Client(), Token: func(_ context.Context, renew bool) (string, error) {
		if renew {
			renewals.Add(1)
		}
		return tokens[renewals.Load()], nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	sub := chat.PushSubscription{Kind: chat.PushFCM, Endpoint: "fcm-token-1"}
	p := Payload{Conv: "42", Title: "ann", Count: 3, MessageID: "9"}
	for _, c := range []struct {
		answer fakeAnswer
		check  func(error) bool
	}{
		{fakeAnswer{200, `{"name":"projects/natter-test/messages/1"}`}, func(err error) bool { return err == nil }},
		{fakeAnswer{404, `{"error":{"status":"NOT_FOUND","details":[{"errorCode":"UNREGISTERED"}]}}`}, func(err error) bool { return errors.Is(err, ErrGone) }},
		{fakeAnswer{429, `{"error":{"status":"RESOURCE_EXHAUSTED"}}`}, isRetry},
		{fakeAnswer{503, `{"error":{"status":"UNAVAILABLE"}}`}, isRetry},
		{fakeAnswer{400, `{"error":{"status":"INVALID_ARGUMENT"}}`}, isPermanent},
		{fakeAnswer{401, `{"error":{"status":"UNAUTHENTICATED"}}`}, isRetry},
	} {
		answer = c.answer
		if err := f.Send(t.Context(), sub, p); !c.check(err) {
			t.Errorf("answer %+v: Send returned %v", c.answer, err)
		}
		m := got.Message
		if m.Token != "fcm-token-1" || m.Notification.Title != "ann" || m.Notification.Body != "" ||
			m.Data["conv"] != "42" || m.Data["count"] != "3" || m.Android.CollapseKey != "conv-42" || bearer != "Bearer tok-1" {
			t.Errorf("answer %+v: request %+v with %q", c.answer, got, bearer)
		}
	}
	if renewals.Load() != 1 {
		t.Errorf("a 401 renewed the token %d times, want 1", renewals.Load())
	}
}

func TestTokenFromFile(t *testing.T) {
	t.Run("a static token is read from the file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "token")
		os.WriteFile(path, []byte("ya29.static\n"), 0o600)
		get, err := TokenFromFile(path, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if tok, err := get(t.Context(), false); tok != "ya29.static" || err != nil {
			t.Fatalf("token = %q, %v", tok, err)
		}
	})
	t.Run("a service account key is exchanged for an access token", func(t *testing.T) {
		key, _ := rsa.GenerateKey(rand.Reader, 2048)
		var calls atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			if r.FormValue("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
				t.Errorf("grant_type = %q", r.FormValue("grant_type"))
			}
			claims := jwt.MapClaims{}
			if _, err := jwt.ParseWithClaims(r.FormValue("assertion"), claims, func(*jwt.Token) (any, error) { return &key.PublicKey, nil },
				jwt.WithValidMethods([]string{"RS256"})); err != nil || claims["iss"] != "sa@natter-test.iam" || claims["scope"] != FCMScope {
				t.Errorf("assertion does not verify or has claims %v: %v", claims, err)
			}
			_, _ = w.Write([]byte(`{"access_token":"ya29.exchanged","expires_in":3600,"token_type":"Bearer"}`))
		}))
		defer srv.Close()
		pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
		sa, _ := json.Marshal(map[string]string{"type": "service_account", "client_email": "sa@natter-test.iam", "private_key": string(pemKey), "token_uri": srv.URL + "/token"})
		path := filepath.Join(t.TempDir(), "sa.json")
		os.WriteFile(path, sa, 0o600)
		get, err := TokenFromFile(path, srv.Client(), nil)
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if tok, err := get(t.Context(), false); tok != "ya29.exchanged" || err != nil {
				t.Fatalf("token = %q, %v", tok, err)
			}
		}
		if calls.Load() != 1 {
			t.Errorf("token endpoint called %d times, want 1 (cached)", calls.Load())
		}
		if _, err := get(t.Context(), true); err != nil || calls.Load() != 2 {
			t.Errorf("renew: %v, calls %d", err, calls.Load())
		}
	})
}
