package wsapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lxzan/gws"
	"golang.org/x/time/rate"

	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/core"
	"github.com/natter-chat/natter/internal/hub"
	"github.com/natter-chat/natter/internal/metrics"
	"github.com/natter-chat/natter/internal/protocol"
)

// Options configures the endpoint. Zero values are documented per field.
// Event streams (the fallback transport) use QueueFrames, MaxInflight,
// FrameRate and StatusRate as WebSockets do, MaxFrameBytes for posted
// frames, PingInterval for their heartbeat comment and WriteTimeout; they
// have no AuthTimeout, IdleTimeout or AwayAfter, since their clients
// authenticate by header and cannot answer pings.
type Options struct {
	// AllowedOrigins lists the browser origins (scheme://host[:port]) that
	// may connect, besides the server's own origin. "*" allows any.
	AllowedOrigins []string
	MaxFrameBytes  int           // largest frame a client may send; zero means 64 KiB
	QueueFrames    int64         // frames queued per connection before it is closed as slow; zero means 1024
	MaxInflight    int64         // sends awaiting their ack per connection; zero means 256
	AuthTimeout    time.Duration // time a connection has to authenticate; zero means 10s
	IdleTimeout    time.Duration // a connection that sends nothing (not even a pong) this long is dropped; zero means 60s
	PingInterval   time.Duration // how often the server pings every connection; zero means 20s
	WriteTimeout   time.Duration // a single frame write; zero means 10s
	AwayAfter      time.Duration // a connection silent this long (missed pongs) is reported away; zero means 45s
	FrameRate      float64       // frames per second a connection may send (burst: twice as many); zero means 200, negative means unlimited
	StatusRate     float64       // presence changes per second a connection may make (burst 5); zero means 1
	Logger         *slog.Logger  // nil means discard
}

func (o *Options) fill() {
	if o.MaxFrameBytes == 0 {
		o.MaxFrameBytes = 64 << 10
	}
	if o.QueueFrames == 0 {
		o.QueueFrames = 1024
	}
	if o.MaxInflight == 0 {
		o.MaxInflight = 256
	}
	if o.AuthTimeout == 0 {
		o.AuthTimeout = 10 * time.Second
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = 60 * time.Second
	}
	if o.PingInterval == 0 {
		o.PingInterval = 20 * time.Second
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.AwayAfter == 0 {
		o.AwayAfter = 45 * time.Second
	}
	if o.FrameRate == 0 {
		o.FrameRate = 200
	}
	if o.StatusRate == 0 {
		o.StatusRate = 1
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Handler serves GET /v1/ws. Create it with New; run its pinger with Run.
type Handler struct {
	svc      *core.Service
	hub      *hub.Hub
	met      *metrics.Metrics
	opts     Options
	log      *slog.Logger
	upgrader *gws.Upgrader
	dispatch *dispatcher
	draining atomic.Bool

	mu      sync.Mutex
	conns   map[*conn]struct{} // every open connection, authenticated or not
	streams map[int64]*stream  // every open event stream (the fallback transport), by id
	told    map[*conn]struct{} // open connections ReconnectConns told to reconnect

	limMu     sync.Mutex
	userLimit map[chat.UserID]*rate.Limiter // frames posted without a stream, per user
	sweepAt   int                           // userLimit is swept of idle limiters when it reaches this size
}

// New returns the endpoint.
func New(svc *core.Service, h *hub.Hub, met *metrics.Metrics, opts Options) *Handler {
	opts.fill()
	ws := &Handler{svc: svc, hub: h, met: met, opts: opts, log: opts.Logger, conns: make(map[*conn]struct{}),
		streams: make(map[int64]*stream), told: make(map[*conn]struct{}), userLimit: make(map[chat.UserID]*rate.Limiter), sweepAt: minSweep,
		dispatch: &dispatcher{svc: svc, met: met, log: opts.Logger}}
	ws.upgrader = gws.NewUpgrader(ws, &gws.ServerOption{
		ReadBufferSize:     1024,
		ReadMaxPayloadSize: opts.MaxFrameBytes,
		CheckUtf8Enabled:   true,
		ParallelEnabled:    false, // frames of a connection are handled in order
		HandshakeTimeout:   5 * time.Second,
		PermessageDeflate:  gws.PermessageDeflate{Enabled: false},
		Recovery:           gws.Recovery,
	})
	return ws
}

const connKey = "c"

// ServeHTTP checks the origin and any Authorization header, then upgrades.
func (ws *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if ws.draining.Load() {
		writeHTTPError(w, http.StatusServiceUnavailable, chat.CodeUnavailable, "the server is restarting; reconnect to another node")
		return
	}
	if !ws.originAllowed(r) {
		writeHTTPError(w, http.StatusForbidden, chat.CodeForbidden, "origin not allowed")
		return
	}
	c := &conn{ws: ws, opened: time.Now(), id: rand.Int64N(1<<62) + 1,
		frames:    ws.frameLimiter(),
		statusLim: rate.NewLimiter(rate.Limit(ws.opts.StatusRate), 5)}
	if r.Header.Get("Authorization") != "" {
		p, ok := ws.authorize(w, r)
		if !ok {
			return
		}
		p.Conn = c.id
		c.principal = p
		c.authed.Store(true)
	}
	socket, err := ws.upgrader.Upgrade(w, r)
	if err != nil {
		return // gws has answered the client
	}
	c.socket = socket
	socket.Session().Store(connKey, c)
	ws.track(c, true)
	if c.authed.Load() {
		// The request's context is not cancelled once the connection is
		// hijacked: bound the registration, which waits while the user's
		// conversations load (hub.Register), by the time a connection has
		// to authenticate.
		ctx, cancel := context.WithTimeout(r.Context(), ws.opts.AuthTimeout)
		err := c.start(ctx)
		cancel()
		if err != nil {
			ws.log.Warn("ws register failed", "user", c.principal.User, "err", err)
			_ = socket.WriteClose(1011, []byte("unavailable"))
			ws.track(c, false)
			return
		}
		_ = socket.SetReadDeadline(time.Now().Add(ws.opts.IdleTimeout))
	} else {
		// The timer closes with a clear code; the read deadline is a backstop.
		c.authTimer = time.AfterFunc(ws.opts.AuthTimeout, func() {
			if !c.authed.Load() {
				c.closeWith(protocol.CloseUnauthenticated, "authenticate first")
			}
		})
		_ = socket.SetReadDeadline(time.Now().Add(ws.opts.AuthTimeout + time.Second))
	}
	go socket.ReadLoop() // returns when the connection closes; gws owns it
}

// authorize checks the request's Authorization header. When it is not a
// valid bearer token it answers 401 (or 503 when the store is down) and
// returns false.
func (ws *Handler) authorize(w http.ResponseWriter, r *http.Request) (core.Principal, bool) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	p, err := ws.svc.Authenticate(r.Context(), token)
	if ok && err == nil {
		return p, true
	}
	code := chat.ErrorCode(err)
	switch {
	case ok && code == chat.CodeUnavailable:
		writeHTTPError(w, http.StatusServiceUnavailable, code, "the service is temporarily unavailable; retry")
		return core.Principal{}, false
	case !ok || code == chat.CodeInternal:
		code = chat.CodeUnauthenticated
	}
	writeHTTPError(w, http.StatusUnauthorized, code, "a valid access token is required")
	return core.Principal{}, false
}

func (ws *Handler) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true // not a browser: browsers always send Origin on WebSocket upgrades
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	return slices.ContainsFunc(ws.opts.AllowedOrigins, func(a string) bool { return a == "*" || strings.EqualFold(a, origin) })
}

func (ws *Handler) track(c *conn, add bool) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if add {
		ws.conns[c] = struct{}{}
		ws.met.Connections.Inc()
	} else if _, ok := ws.conns[c]; ok {
		delete(ws.conns, c)
		delete(ws.told, c)
		ws.met.Connections.Dec()
	}
}

// Conns returns the number of open connections, event streams included.
func (ws *Handler) Conns() int {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return len(ws.conns) + len(ws.streams)
}

// Run pings every connection each PingInterval until ctx is done. One
// goroutine serves all connections; a client that answers nothing within
// IdleTimeout is dropped by its read deadline.
func (ws *Handler) Run(ctx context.Context) {
	t := time.NewTicker(ws.opts.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			ws.mu.Lock()
			conns := make([]*conn, 0, len(ws.conns))
			for c := range ws.conns {
				if c.authed.Load() {
					c.ping()
					conns = append(conns, c)
				}
			}
			ws.mu.Unlock()
			for _, c := range conns {
				c.heartbeat(now, ws.opts.AwayAfter)
			}
		}
	}
}

// Drain refuses new connections, tells every client to reconnect after a
// random delay below jitter (so they do not all come back at once), closes
// them (WebSockets with 1001; event streams end after the reconnect
// frame), and waits until they are gone or ctx is done.
func (ws *Handler) Drain(ctx context.Context, jitter time.Duration) {
	ws.draining.Store(true)
	ws.tellReconnect(jitter, "server restarting")
	for ws.Conns() > 0 {
		select {
		case <-ctx.Done():
			ws.mu.Lock()
			for c := range ws.conns {
				_ = c.socket.NetConn().Close()
			}
			for _, st := range ws.streams {
				st.cancel()
			}
			ws.mu.Unlock()
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Reconnect tells every connected client to reconnect after a random
// delay below jitter and closes its connection, without draining: the
// node keeps serving, and the clients come back (to it or another node)
// and catch up from their cursors. A node calls it when its bus lost
// events, so that no client keeps a cursor past a change it never got.
func (ws *Handler) Reconnect(jitter time.Duration) {
	ws.tellReconnect(jitter, missedReason)
}

// ReconnectConns does what Reconnect does, but only for conns (the hub's
// view of this Handler's connections; connections that have closed
// meanwhile, or are not this Handler's, are ignored). A WebSocket is told
// once: one that an earlier call told is skipped, so a burst of calls
// queues one frame on each (an event stream ends once anyway). It only
// queues, never waits, so it may be called under a lock that the hub's
// fan-out is also called under: every frame queued to these connections
// after it returns then comes after the reconnect frame and is never
// written. A cluster node calls it for the members of a conversation whose
// messages it could not hand on in order.
func (ws *Handler) ReconnectConns(conns []hub.Conn, jitter time.Duration) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for _, hc := range conns {
		switch c := hc.(type) {
		case *stream:
			c.end(reconnectFrame(jitter))
		case *conn:
			_, open := ws.conns[c]
			if _, told := ws.told[c]; !open || told {
				continue
			}
			ws.told[c] = struct{}{}
			closeAfterReconnect(c.socket, reconnectFrame(jitter), missedReason)
		}
	}
}

// missedReason is the close reason of a WebSocket told to reconnect
// because the node missed events.
const missedReason = "missed events, reconnect to catch up"

// tellReconnect sends every connection a reconnect frame and closes it
// (WebSockets with 1001 and reason; event streams end after the frame).
func (ws *Handler) tellReconnect(jitter time.Duration, reason string) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for _, st := range ws.streams {
		st.end(reconnectFrame(jitter))
	}
	for c := range ws.conns {
		closeAfterReconnect(c.socket, reconnectFrame(jitter), reason)
	}
}

// closeAfterReconnect queues, behind the frames already queued on s, the
// reconnect frame and then a close with 1001 and reason.
func closeAfterReconnect(s *gws.Conn, frame []byte, reason string) {
	s.Async(func() {
		_ = s.SetWriteDeadline(time.Now().Add(time.Second))
		_ = s.WriteMessage(gws.OpcodeText, frame)
		_ = s.WriteClose(1001, []byte(reason))
	})
}

// reconnectFrame tells a client to reconnect after a random delay below
// jitter.
func reconnectFrame(jitter time.Duration) []byte {
	after := int64(0)
	if jitter >= time.Millisecond {
		after = rand.Int64N(int64(jitter / time.Millisecond))
	}
	return protocol.Encode(protocol.ReconnectFrame{Type: protocol.TypeReconnect, AfterMS: after})
}

// OnOpen implements gws.Event.
func (ws *Handler) OnOpen(*gws.Conn) {}

// OnClose implements gws.Event.
func (ws *Handler) OnClose(socket *gws.Conn, err error) {
	c := connOf(socket)
	if c == nil {
		return
	}
	c.stop()
	ws.track(c, false)
}

// OnPing implements gws.Event.
func (ws *Handler) OnPing(socket *gws.Conn, payload []byte) {
	ws.touch(socket)
	if c := connOf(socket); c != nil {
		c.answerPing(payload)
		return
	}
	_ = socket.SetWriteDeadline(time.Now().Add(ws.opts.WriteTimeout))
	_ = socket.WritePong(payload)
}

// OnPong implements gws.Event.
func (ws *Handler) OnPong(socket *gws.Conn, _ []byte) { ws.touch(socket) }

func (ws *Handler) touch(socket *gws.Conn) {
	if c := connOf(socket); c != nil && c.authed.Load() {
		_ = socket.SetReadDeadline(time.Now().Add(ws.opts.IdleTimeout))
		c.touch()
	}
}

// OnMessage implements gws.Event: it dispatches one client frame.
func (ws *Handler) OnMessage(socket *gws.Conn, message *gws.Message) {
	defer message.Close()
	c := connOf(socket)
	if c == nil {
		return
	}
	if message.Opcode != gws.OpcodeText {
		c.fail(nil, chat.Errorf(chat.CodeInvalidJSON, "frames must be JSON text frames"))
		return
	}
	c.handle(message.Bytes())
}

// frameLimiter returns a connection's frame budget: FrameRate per second
// with a burst of twice that (at least 1); a negative rate is unlimited.
func (ws *Handler) frameLimiter() *rate.Limiter {
	if ws.opts.FrameRate < 0 {
		return rate.NewLimiter(rate.Inf, 1)
	}
	return rate.NewLimiter(rate.Limit(ws.opts.FrameRate), max(1, int(2*ws.opts.FrameRate)))
}

func connOf(socket *gws.Conn) *conn {
	v, ok := socket.Session().Load(connKey)
	if !ok {
		return nil
	}
	c, _ := v.(*conn)
	return c
}

func writeHTTPError(w http.ResponseWriter, status int, code chat.Code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(protocol.ErrorBody{Error: protocol.ErrorDetail{Code: string(code), Message: msg}})
}

var errClosed = errors.New("connection closed")
