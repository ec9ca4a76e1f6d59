package loadtest

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// The scenarios Run knows.
const (
	ScenarioSends  = "sends"
	ScenarioFanout = "fanout"
	ScenarioIdle   = "idle"
	ScenarioUpload = "upload"
)

// Options configure a load run. Fields that do not apply to the chosen
// scenario are ignored.
type Options struct {
	// Scenario is ScenarioSends, ScenarioFanout, ScenarioIdle or
	// ScenarioUpload. Empty means ScenarioSends.
	Scenario string
	// Addr is the server's base URL. Empty means "http://127.0.0.1:8080".
	Addr string
	// Nodes, if set, are the base URLs of several nodes of one cluster
	// (Addr is then ignored): users are spread over them round robin, and
	// in the sends scenario each receiver is on another node than its
	// sender, so every delivery crosses the bus between nodes.
	Nodes []string
	// AllowRemote permits a target that is not loopback (localhost,
	// 127.0.0.0/8, ::1). False means such a target is refused.
	AllowRemote bool
	// Duration caps the measured phase (sending, or opening connections
	// for idle). Zero means one minute. Setup (registering users, creating
	// conversations, connecting) and teardown are bounded by the context
	// given to Run only.
	Duration time.Duration
	// Drain is how long to wait after the measured phase for deliveries
	// still in flight. Zero means 10s.
	Drain time.Duration

	// Senders is the number of sending (sends) or uploading (upload)
	// users. Zero means 10.
	Senders int
	// Messages is the number of messages per sender (sends; zero means
	// 1000) or in total (fanout; zero means 200).
	Messages int
	// Window is how many sends each sender keeps in flight (sends). Zero
	// means 1: send, wait for the ack, send the next.
	Window int
	// Members is the size of the group (fanout), sender included. Zero
	// means 1000.
	Members int
	// Rate is the sender's pace in messages per second (fanout). Zero
	// means 20.
	Rate float64
	// Conns is the number of connections to open (idle). Zero means 10000.
	Conns int
	// Users is the number of users whose tokens the idle connections use,
	// round robin. Zero means 1.
	Users int
	// Uploads is the number of files each sender uploads (upload). Zero
	// means 50.
	Uploads int
	// FileSize is the size of each uploaded file in bytes (upload). Zero
	// means 1 MiB.
	FileSize int

	// LocalAddrs are source IP addresses for the WebSocket connections,
	// used round robin (e.g. 127.0.0.2, 127.0.0.3 to get past one
	// address's ephemeral ports). Empty means the system's choice.
	LocalAddrs []string
	// TextSize is the length of each message text in bytes. Zero means 64.
	TextSize int
	// SetupParallel bounds concurrent registrations (the server hashes
	// passwords with argon2id, which is slow on purpose). Zero means 4.
	SetupParallel int
	// ConnectParallel bounds concurrent WebSocket dials. Zero means 64.
	ConnectParallel int
}

// withDefaults returns o with every zero field set to its default.
func (o Options) withDefaults() Options {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	if o.Scenario == "" {
		o.Scenario = ScenarioSends
	}
	if len(o.Nodes) > 0 {
		o.Addr = o.Nodes[0]
	}
	if o.Addr == "" {
		o.Addr = "http://127.0.0.1:8080"
	}
	if o.Duration == 0 {
		o.Duration = time.Minute
	}
	if o.Drain == 0 {
		o.Drain = 10 * time.Second
	}
	def(&o.Senders, 10)
	if o.Scenario == ScenarioFanout {
		def(&o.Messages, 200)
	} else {
		def(&o.Messages, 1000)
	}
	def(&o.Window, 1)
	def(&o.Members, 1000)
	if o.Rate == 0 {
		o.Rate = 20
	}
	def(&o.Conns, 10000)
	def(&o.Users, 1)
	def(&o.Uploads, 50)
	def(&o.FileSize, 1<<20)
	def(&o.TextSize, 64)
	def(&o.SetupParallel, 4)
	def(&o.ConnectParallel, 64)
	return o
}

// validate reports every problem of o (after withDefaults) at once.
func (o Options) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch o.Scenario {
	case ScenarioSends, ScenarioFanout, ScenarioIdle, ScenarioUpload:
	default:
		bad("unknown scenario %q (want sends, fanout, idle or upload)", o.Scenario)
	}
	if err := checkTarget(o.Addr, o.AllowRemote); err != nil {
		errs = append(errs, err)
	}
	for _, n := range o.Nodes[min(1, len(o.Nodes)):] {
		if err := checkTarget(n, o.AllowRemote); err != nil {
			errs = append(errs, err)
		}
	}
	for name, v := range map[string]int{
		"senders": o.Senders, "messages": o.Messages, "window": o.Window, "members": o.Members,
		"conns": o.Conns, "users": o.Users, "text size": o.TextSize, "uploads": o.Uploads, "file size": o.FileSize,
		"setup parallelism": o.SetupParallel, "connect parallelism": o.ConnectParallel,
	} {
		if v < 0 {
			bad("%s must not be negative (got %d)", name, v)
		}
	}
	if o.Duration < 0 || o.Drain < 0 {
		bad("duration and drain must not be negative")
	}
	if o.Rate < 0 {
		bad("rate must not be negative (got %g)", o.Rate)
	}
	if o.Scenario == ScenarioFanout && o.Members < 2 {
		bad("fanout needs at least 2 members (got %d)", o.Members)
	}
	for _, a := range o.LocalAddrs {
		if net.ParseIP(a) == nil {
			bad("local address %q is not an IP address", a)
		}
	}
	return errors.Join(errs...)
}

// checkTarget refuses a base URL whose host is not loopback, unless
// allowRemote is set. Host names other than "localhost" are not resolved:
// a name that happens to resolve to 127.0.0.1 is still refused.
func checkTarget(addr string, allowRemote bool) error {
	u, err := url.Parse(addr)
	if err != nil {
		return fmt.Errorf("address %q: %w", addr, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("address %q must start with http:// or https://", addr)
	}
	host := u.Hostname()
	if host == "" {
		return fmt.Errorf("address %q has no host", addr)
	}
	if allowRemote || isLoopback(host) {
		return nil
	}
	return fmt.Errorf("address %q is not loopback; load tests target localhost unless remote targets are explicitly allowed", addr)
}

func isLoopback(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" {
		return true
	}
	if i := strings.IndexByte(host, '%'); i >= 0 { // IPv6 zone, e.g. ::1%lo
		host = host[:i]
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
