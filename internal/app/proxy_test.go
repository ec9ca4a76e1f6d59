package app_test

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/natter-chat/natter/internal/app"
)

// loginFrom tries a login with X-Forwarded-For set to xff and returns the
// status.
func loginFrom(t *testing.T, n *node, xff, username, password string) int {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctxT(t), "POST", n.URL+"/v1/sessions", strings.NewReader(credentials(username, password)))
	req.Header.Set("X-Forwarded-For", xff)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// Behind a trusted load balancer, the login throttle counts failures per
// client (from X-Forwarded-For), so one guesser does not slow down every
// user behind the same proxy; a client cannot dodge it by forging the
// header, since only the hops trusted proxies appended count.
func TestLoginThrottle_PerClientBehindATrustedProxy(t *testing.T) {
	n := startNode(t, "", func(c *app.Config) { c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")} })
	olga, _ := n.user(t, "olga")
	me, err := olga.Me(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	throttled := false
	for i := range 40 {
		// Forged leftmost hops change every time; the hop the proxy added is the same.
		xff := fmt.Sprintf("10.9.%d.%d, 203.0.113.7", i/250, i%250)
		if i%2 == 1 {
			xff = fmt.Sprintf("10.9.%d.%d, 203.0.113.7:%d", i/250, i%250, 40000+i) // some balancers add the port
		}
		status := loginFrom(t, n, xff, fmt.Sprintf("nobody%d", i), "not the password at all")
		if status == http.StatusTooManyRequests {
			throttled = true
			break
		}
		if status != http.StatusUnauthorized {
			t.Fatalf("attempt %d: status %d", i, status)
		}
	}
	if !throttled {
		t.Fatal("40 failed logins from one client behind the proxy were never throttled")
	}
	// Another client behind the same proxy logs in at once.
	if status := loginFrom(t, n, "198.51.100.9", me.Username, goodPassword); status != http.StatusOK {
		t.Fatalf("another client behind the proxy: status %d, want 200", status)
	}
}

// Without trusted proxies the header is ignored: the connection's peer is
// the client, whatever it claims.
func TestLoginThrottle_ForwardedForIgnoredWithoutTrustedProxies(t *testing.T) {
	n := startNode(t, "")
	throttled := false
	for i := range 40 {
		status := loginFrom(t, n, fmt.Sprintf("198.51.100.%d", i), fmt.Sprintf("nobody%d", i), "not the password at all")
		if status == http.StatusTooManyRequests {
			throttled = true
			break
		}
	}
	if !throttled {
		t.Fatal("a client changing X-Forwarded-For on every attempt escaped the address throttle")
	}
}
