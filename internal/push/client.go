package push

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// NewClient returns the HTTP client the senders use by default: a 10 s
// timeout and, unless allowPrivate, a dialer that refuses loopback,
// private, link-local and other non-public addresses. Web Push endpoints
// are URLs that clients choose, so without that check a client could make
// the server post to its own internal network. allowPrivate is for tests
// with local fakes.
func NewClient(allowPrivate bool) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		dialer.Control = publicOnly
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = dialer.DialContext
	tr.Proxy = nil // a proxy would defeat the address check
	tr.MaxIdleConnsPerHost = 16
	return &http.Client{Transport: tr, Timeout: 10 * time.Second, CheckRedirect: noRedirects}
}

// noRedirects keeps a push service's redirect from sending the request
// (and its credentials) elsewhere.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// publicOnly is a net.Dialer Control that refuses non-public addresses.
// It runs after name resolution, on the address actually dialled.
func publicOnly(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return err
	}
	if !Public(ip) {
		return fmt.Errorf("push: refusing to connect to non-public address %s", ip)
	}
	return nil
}

// Public reports whether ip is a public unicast address.
func Public(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsGlobalUnicast() && !ip.IsPrivate() && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() &&
		!netip.MustParsePrefix("100.64.0.0/10").Contains(ip) && !netip.MustParsePrefix("fc00::/7").Contains(ip)
}
