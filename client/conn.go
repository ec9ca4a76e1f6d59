package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lxzan/gws"
	"github.com/natter-chat/natter/internal/protocol"
)

// ConnOptions configure Connect.
type ConnOptions struct {
	// OnEvent is called for every frame the server pushes that is not the
	// answer to a request of this Conn: message, conversation,
	// members_added, member_removed, read, reconnect, and error frames
	// without a ref. It is called from one goroutine owned by the Conn, in
	// the order the frames arrived, and may call the Conn's methods. Nil
	// means such frames are dropped. Answers to requests do not queue
	// behind pushes: a Send may return before OnEvent has seen the message
	// push that the server wrote before the ack.
	//
	// While OnEvent lags more than EventBuffer frames behind, the Conn
	// stops reading (over a WebSocket, answers to requests wait too) and
	// the server will eventually close the connection as a slow consumer.
	OnEvent func(ServerFrame)
	// EventBuffer is how many pushed frames may wait for OnEvent. Zero
	// means 256.
	EventBuffer int
	// LocalAddr is the source IP address to connect from, e.g. "127.0.0.2",
	// so that a load test can open more connections than one address has
	// ephemeral ports. Empty means the system's choice.
	LocalAddr string
	// ReadBufferSize is the size of the connection's read buffer in bytes;
	// larger frames are still read whole. Zero means 1024 (4096 for SSE).
	ReadBufferSize int
	// Transport says how to reach the server: TransportWebSocket;
	// TransportSSE, the fallback for networks that block WebSocket; or
	// TransportAuto, which tries the WebSocket and falls back to SSE when
	// it fails for a reason other than authentication or an unreachable
	// server (a proxy answering the upgrade with an HTTP error, a reset
	// connection, no ready frame). Empty means TransportAuto.
	Transport string
}

// Transports of a Conn (ConnOptions.Transport, Conn.Transport).
//
// Over SSE the server's frames arrive as Server-Sent Events on GET
// /v1/events, and each request is a POST /v1/frames answered in its
// response. Everything a Conn offers works the same, with these
// differences: there are no close codes on an event stream, so CloseCode
// reports the one the WebSocket would have had when the server said why
// it ended the stream (1001 after a reconnect frame, CloseSessionRevoked
// after an error frame with code unauthenticated and no ref) and 0
// otherwise (a slow consumer's stream just ends); and each request
// carries the Client's current access token, so once it expires requests
// fail with code token_expired until Client.Refresh (the stream stays
// open, as a WebSocket does).
const (
	TransportAuto      = "auto"
	TransportWebSocket = "websocket"
	TransportSSE       = "sse"
)

// Conn is an authenticated connection to the server, over a WebSocket or
// its SSE fallback (see Transport). Its methods are safe for concurrent
// use; many requests may be in flight at once, each matched to its answer
// by a ref.
//
// A Conn owns two goroutines: the reader, and (when OnEvent is set) the
// event dispatcher. Close stops both. When the connection ends, every
// waiting request fails with an error matching ErrClosed.
type Conn struct {
	link    link // set before the reader starts
	onEvent func(ServerFrame)
	events  chan ServerFrame // nil when onEvent is nil; closed by the reader when it ends
	nextRef atomic.Int64

	ready         chan struct{} // closed by the reader when the ready frame arrived
	readySeen     bool          // touched by the reader only
	user, session string        // written before ready is closed
	closing       chan struct{} // closed by Close
	closeOnce     sync.Once
	readDone      chan struct{} // closed when the reader has returned
	eventsDone    chan struct{} // closed when the dispatcher has returned; nil without OnEvent
	inEvent       atomic.Bool   // an OnEvent call is running

	mu         sync.Mutex
	pending    map[int64]chan ServerFrame // guarded by mu; nil once done is closed
	done       chan struct{}              // closed, with mu held, when the connection ended
	closeErr   *CloseError                // guarded by mu; set before done is closed
	connectErr *Error                     // guarded by mu; an error frame received before ready
}

// Connect opens a connection authenticated with the stored access token,
// over the transport opts.Transport asks for, and returns once the server
// has sent its ready frame. A rejected token gives an *Error with code
// "unauthenticated" (or the server's error code) and, when the server
// closed a WebSocket, a *CloseError in the chain too. ctx bounds the
// dial, the handshake and the wait for ready (each also at most 10s, per
// transport tried), not the life of the Conn.
func (c *Client) Connect(ctx context.Context, opts ConnOptions) (*Conn, error) {
	const op = "connect"
	if c.badURL != nil {
		return nil, fmt.Errorf("natter: %s: %w", op, c.badURL)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("natter: %s: %w", op, err)
	}
	var local net.IP
	if opts.LocalAddr != "" {
		if local = net.ParseIP(opts.LocalAddr); local == nil {
			return nil, fmt.Errorf("natter: %s: local address %q is not an IP address", op, opts.LocalAddr)
		}
	}
	switch opts.Transport {
	case TransportWebSocket:
		return c.connectWebSocket(ctx, opts, local)
	case TransportSSE:
		return c.connectSSE(ctx, opts, local)
	case "", TransportAuto:
		conn, err := c.connectWebSocket(ctx, opts, local)
		if err == nil || !fallBack(ctx, err) {
			return conn, err
		}
		conn, sseErr := c.connectSSE(ctx, opts, local)
		if sseErr != nil {
			return nil, fmt.Errorf("%w (after the WebSocket failed: %w)", sseErr, err)
		}
		return conn, nil
	}
	return nil, fmt.Errorf("natter: %s: unknown transport %q (want %q, %q or %q)", op, opts.Transport, TransportAuto, TransportWebSocket, TransportSSE)
}

// fallBack says whether a WebSocket connect that failed with err is worth
// retrying over SSE: not when the token was refused (it would be again),
// the server could not be reached at all (dial errors), or ctx ended.
func fallBack(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	switch ErrorCode(err) {
	case "unauthenticated", "token_expired":
		return false
	}
	var oe *net.OpError
	return !errors.As(err, &oe) || oe.Op != "dial"
}

// connectTimeout bounds one transport's dial, handshake and wait for
// ready: 10s, or less when ctx ends sooner.
func connectTimeout(ctx context.Context) time.Duration {
	t := 10 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		t = min(t, time.Until(dl))
	}
	return max(t, time.Millisecond)
}

func (c *Client) connectWebSocket(ctx context.Context, opts ConnOptions, local net.IP) (*Conn, error) {
	const op = "ws connect"
	d := &dialer{ctx: ctx, nd: net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}}
	if local != nil {
		d.nd.LocalAddr = &net.TCPAddr{IP: local}
	}
	handshakeTimeout := connectTimeout(ctx)
	header := http.Header{}
	if tok := c.accessToken(); tok != "" {
		header.Set("Authorization", "Bearer "+tok)
	}
	conn := newConn(opts)
	stop := context.AfterFunc(ctx, d.abort)
	ws, resp, err := gws.NewClient(connHandler{conn}, &gws.ClientOption{
		Addr:             websocketURL(c.base) + "/v1/ws",
		RequestHeader:    header,
		ReadBufferSize:   cmpOr(opts.ReadBufferSize, 1024),
		HandshakeTimeout: handshakeTimeout,
		NewDialer:        func() (gws.Dialer, error) { return d, nil },
	})
	aborted := !stop()
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("natter: %s: %w", op, ctx.Err())
		}
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			// The connection is closed by now, but a small error body is
			// usually already buffered.
			b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
			return nil, parseError(op, resp.StatusCode, resp.Header, b)
		}
		return nil, fmt.Errorf("natter: %s: %w", op, err)
	}
	conn.link = &wsLink{ws: ws}
	conn.start()
	if aborted {
		conn.Close()
		return nil, fmt.Errorf("natter: %s: %w", op, ctx.Err())
	}
	if err := conn.awaitReady(ctx, op, handshakeTimeout); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// awaitReady waits until the server's ready frame arrived, the connection
// ended, ctx ended or timeout passed.
func (c *Conn) awaitReady(ctx context.Context, op string, timeout time.Duration) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-c.ready:
		return nil
	case <-c.done:
		select {
		case <-c.ready: // ready, then closed at once: the caller sees Done
			return nil
		default:
		}
		return c.connectError(op)
	case <-ctx.Done():
		return fmt.Errorf("natter: %s: %w", op, ctx.Err())
	case <-timer.C:
		return fmt.Errorf("natter: %s: no ready frame within %s", op, timeout)
	}
}

func newConn(opts ConnOptions) *Conn {
	c := &Conn{
		onEvent:  opts.OnEvent,
		ready:    make(chan struct{}),
		closing:  make(chan struct{}),
		readDone: make(chan struct{}),
		pending:  make(map[int64]chan ServerFrame),
		done:     make(chan struct{}),
	}
	if c.onEvent != nil {
		c.events = make(chan ServerFrame, cmpOr(opts.EventBuffer, 256))
		c.eventsDone = make(chan struct{})
	}
	return c
}

// start launches the reader and the dispatcher; c.link must be set.
func (c *Conn) start() {
	go func() {
		defer close(c.readDone)
		c.finish(c.link.run(c)) // in case the link ended without saying why
		if c.events != nil {
			close(c.events)
		}
	}()
	if c.events == nil {
		return
	}
	go func() {
		defer close(c.eventsDone)
		for f := range c.events {
			select {
			case <-c.closing:
				return
			default:
			}
			c.inEvent.Store(true)
			c.onEvent(f)
			c.inEvent.Store(false)
		}
	}()
}

// connectError explains why the connection ended before ready.
func (c *Conn) connectError(op string) error {
	c.mu.Lock()
	ce, fe := c.closeErr, c.connectErr
	c.mu.Unlock()
	if fe == nil && ce.Code == CloseUnauthenticated {
		fe = &Error{Code: "unauthenticated", Message: ce.Reason}
	}
	if fe != nil {
		fe.Op = op
		return fmt.Errorf("%w (%w)", fe, ce)
	}
	return fmt.Errorf("natter: %s: %w", op, ce)
}

// UserID returns the id of the authenticated user, from the ready frame.
func (c *Conn) UserID() string { return c.user }

// SessionID returns the id of the session (login) the connection uses.
func (c *Conn) SessionID() string { return c.session }

// Transport returns the transport the Conn runs over: TransportWebSocket
// or TransportSSE.
func (c *Conn) Transport() string { return c.link.name() }

// Done returns a channel that is closed when the connection has ended,
// by Close or otherwise. Pushed frames already queued may still reach
// OnEvent afterwards, unless Close was called.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns nil while the connection is open, and a *CloseError saying
// how it ended afterwards.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeErr == nil {
		return nil
	}
	return c.closeErr
}

// CloseCode returns the close code the server sent, or 0 while the
// connection is open or when it ended without one (including by Close).
func (c *Conn) CloseCode() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeErr == nil {
		return 0
	}
	return c.closeErr.Code
}

// Close closes the connection (a WebSocket with code 1000; an event
// stream and its requests in flight are cancelled), fails waiting
// requests, and waits for the Conn's goroutines to end, except that it
// does not wait for an OnEvent call in progress (so that OnEvent may call
// Close): the dispatcher ends as soon as that call returns, and delivers
// nothing more. It is safe to call more than once; it always returns nil.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		close(c.closing)
		c.link.close()
	})
	<-c.readDone
	if c.eventsDone != nil && !c.inEvent.Load() {
		<-c.eventsDone
	}
	return nil
}

// finish records how the connection ended and releases every waiting
// request. Only the first call has an effect.
func (c *Conn) finish(cause error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeErr != nil {
		return
	}
	ce := &CloseError{}
	var gce *gws.CloseError
	var own *CloseError
	select {
	case <-c.closing: // closed by this side: nothing to report
	default:
		switch {
		case errors.As(cause, &gce):
			ce.Code, ce.Reason = int(gce.Code), string(gce.Reason)
		case errors.As(cause, &own): // the reason an event stream ended
			*ce = *own
		default:
			ce.cause = cause // a network failure, or nil
		}
	}
	c.closeErr = ce
	c.pending = nil
	close(c.done)
}

// Send stores a message and returns it once the server has acknowledged
// it, which it does only after the message is durable. duplicate is true
// when clientID was already used in conv: the original message is
// returned, so a send whose outcome is unknown may be retried with the
// same clientID. A server refusal is an *Error (e.g. code rate_limited,
// with RetryAfter).
func (c *Conn) Send(ctx context.Context, conv, clientID, text string) (msg Message, duplicate bool, err error) {
	const op = "ws send"
	r, err := c.request(ctx, op, ClientFrame{Type: protocol.TypeSend, Conv: conv, ClientID: clientID, Text: text})
	if err != nil {
		return Message{}, false, err
	}
	m, err := r.Msg()
	if err != nil || m == nil || r.Type != protocol.TypeAck {
		return Message{}, false, unexpected(op, r, err)
	}
	return *m, r.Duplicate, nil
}

// Sync returns up to limit messages of conv with seq > after, in
// ascending seq order; hasMore says whether more follow. Limit zero means
// the server's default page size.
func (c *Conn) Sync(ctx context.Context, conv string, after int64, limit int) (msgs []Message, hasMore bool, err error) {
	const op = "ws sync"
	r, err := c.request(ctx, op, ClientFrame{Type: protocol.TypeSync, Conv: conv, After: after, Limit: limit})
	if err != nil {
		return nil, false, err
	}
	if r.Type != protocol.TypeMessages {
		return nil, false, unexpected(op, r, nil)
	}
	if r.Messages == nil {
		r.Messages = []Message{}
	}
	return r.Messages, r.HasMore, nil
}

// catchUpPage is the page size CatchUp asks for: the server's maximum.
const catchUpPage = 500

// CatchUp returns every message of conv with seq > after, in ascending
// seq order, paging with Sync. It is what a client does after a
// reconnect, with after the highest seq it has seen.
func (c *Conn) CatchUp(ctx context.Context, conv string, after int64) ([]Message, error) {
	var all []Message
	for {
		page, more, err := c.Sync(ctx, conv, after, catchUpPage)
		if err != nil {
			return all, err
		}
		all = append(all, page...)
		if !more {
			return all, nil
		}
		if len(page) == 0 {
			return all, fmt.Errorf("natter: ws sync: server reported more messages after seq %d but sent none", after)
		}
		after = page[len(page)-1].Seq
	}
}

// MarkRead raises the user's read watermark in conv to seq and returns
// the watermark the server stored (it never goes down, and is clamped to
// the conversation's last seq).
func (c *Conn) MarkRead(ctx context.Context, conv string, seq int64) (readSeq int64, err error) {
	const op = "ws read"
	r, err := c.request(ctx, op, ClientFrame{Type: protocol.TypeRead, Conv: conv, Seq: seq})
	if err != nil {
		return 0, err
	}
	if r.Type != protocol.TypeAck {
		return 0, unexpected(op, r, nil)
	}
	return r.ReadSeq, nil
}

// Ping asks the server for a pong and waits for it: a round trip through
// the server's frame dispatch, not just the WebSocket layer.
func (c *Conn) Ping(ctx context.Context) error {
	const op = "ws ping"
	r, err := c.request(ctx, op, ClientFrame{Type: protocol.TypePing})
	if err != nil {
		return err
	}
	if r.Type != protocol.TypePong {
		return unexpected(op, r, nil)
	}
	return nil
}

// request sends f with a fresh ref and waits for the frame that answers
// it. An error frame becomes an *Error. Over a WebSocket, writing the
// frame is not interrupted by ctx; waiting for the answer is.
func (c *Conn) request(ctx context.Context, op string, f ClientFrame) (ServerFrame, error) {
	if err := ctx.Err(); err != nil {
		return ServerFrame{}, fmt.Errorf("natter: %s: %w", op, err)
	}
	id := c.nextRef.Add(1)
	f.Ref = strconv.AppendInt(nil, id, 10)
	b, err := json.Marshal(f)
	if err != nil {
		return ServerFrame{}, fmt.Errorf("natter: %s: encode frame: %w", op, err)
	}
	r, err := c.link.exchange(ctx, c, op, id, b)
	if err != nil {
		return ServerFrame{}, err
	}
	return answer(op, r)
}

// link is the transport under a Conn: a WebSocket (wsLink) or an event
// stream with requests posted beside it (sseLink).
type link interface {
	name() string
	// run reads frames, handing each to c.handle, until the link ends, and
	// returns why (nil when it does not know). It runs on the reader.
	run(c *Conn) error
	// exchange sends frame b, whose ref is id, and returns the frame that
	// answers it; an error frame is not an error here. Once the Conn has
	// ended it fails with the Conn's *CloseError.
	exchange(ctx context.Context, c *Conn, op string, id int64, b []byte) (ServerFrame, error)
	// close ends the link for Close, without blocking for long; run
	// returns soon after.
	close()
}

// wsLink is a WebSocket: requests and answers, matched by ref, share it
// with the pushed frames.
type wsLink struct{ ws *gws.Conn }

func (l *wsLink) name() string { return TransportWebSocket }

// run returns nil: gws reports the end to OnClose, which calls finish.
func (l *wsLink) run(*Conn) error {
	l.ws.ReadLoop()
	return nil
}

func (l *wsLink) close() {
	nc := l.ws.NetConn()
	// A blocked writer (a server that does not read) must not hold Close
	// up for long.
	_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
	_ = l.ws.WriteClose(1000, nil)
	_ = nc.Close()
}

func (l *wsLink) exchange(ctx context.Context, c *Conn, op string, id int64, b []byte) (ServerFrame, error) {
	ch := make(chan ServerFrame, 1)
	c.mu.Lock()
	if c.closeErr != nil {
		ce := c.closeErr
		c.mu.Unlock()
		return ServerFrame{}, fmt.Errorf("natter: %s: %w", op, ce)
	}
	c.pending[id] = ch
	c.mu.Unlock()

	if err := l.ws.WriteMessage(gws.OpcodeText, b); err != nil {
		c.forget(id)
		select {
		case <-c.done:
			return ServerFrame{}, fmt.Errorf("natter: %s: %w", op, c.Err())
		default:
			return ServerFrame{}, fmt.Errorf("natter: %s: %w: %w", op, ErrClosed, err)
		}
	}
	select {
	case r := <-ch:
		return r, nil
	case <-ctx.Done():
		c.forget(id)
		return ServerFrame{}, fmt.Errorf("natter: %s: %w", op, ctx.Err())
	case <-c.done:
		select {
		case r := <-ch: // answered just before the end
			return r, nil
		default:
			return ServerFrame{}, fmt.Errorf("natter: %s: %w", op, c.Err())
		}
	}
}

func answer(op string, r ServerFrame) (ServerFrame, error) {
	if r.Type == protocol.TypeError {
		return r, &Error{Op: op, Code: r.Code, Message: r.ErrorText(), RetryAfter: time.Duration(r.RetryAfter) * time.Second, Cursor: r.Cursor}
	}
	return r, nil
}

func unexpected(op string, r ServerFrame, err error) error {
	if err != nil {
		return fmt.Errorf("natter: %s: bad %q answer: %w", op, r.Type, err)
	}
	return fmt.Errorf("natter: %s: unexpected %q answer", op, r.Type)
}

func (c *Conn) forget(id int64) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

// deliver hands an answer to the request waiting for ref and reports
// whether there was one.
func (c *Conn) deliver(ref json.RawMessage, f ServerFrame) bool {
	id, err := strconv.ParseInt(strings.Trim(string(ref), `"`), 10, 64)
	if err != nil {
		return false
	}
	c.mu.Lock()
	ch, ok := c.pending[id]
	delete(c.pending, id)
	c.mu.Unlock()
	if ok {
		ch <- f // buffered, and only ever sent to once
	}
	return ok
}

// handle routes one frame read from the network and returns it; ok is
// false when data is not a frame. It runs on the reader.
func (c *Conn) handle(data []byte) (f ServerFrame, ok bool) {
	if err := json.Unmarshal(data, &f); err != nil {
		return f, false // not a frame of the protocol; nothing can answer it
	}
	if !c.readySeen {
		switch f.Type {
		case protocol.TypeReady:
			c.readySeen = true
			c.user, c.session = f.User, f.Session
			close(c.ready)
			return f, true
		case protocol.TypeError:
			c.mu.Lock()
			if c.connectErr == nil {
				c.connectErr = &Error{Code: f.Code, Message: f.ErrorText(), RetryAfter: time.Duration(f.RetryAfter) * time.Second}
			}
			c.mu.Unlock()
		}
	}
	if len(f.Ref) > 0 && c.deliver(f.Ref, f) {
		return f, true
	}
	if c.events == nil {
		return f, true
	}
	select {
	case c.events <- f:
	case <-c.closing:
	}
	return f, true
}

// connHandler adapts a Conn to gws's callbacks, which run on the reader.
type connHandler struct{ c *Conn }

func (h connHandler) OnOpen(*gws.Conn)                      {}
func (h connHandler) OnPong(*gws.Conn, []byte)              {}
func (h connHandler) OnPing(ws *gws.Conn, payload []byte)   { _ = ws.WritePong(payload) }
func (h connHandler) OnClose(_ *gws.Conn, err error)        { h.c.finish(err) }
func (h connHandler) OnMessage(_ *gws.Conn, m *gws.Message) { h.c.handle(m.Bytes()); _ = m.Close() }

// dialer dials with ctx and lets Connect abort a handshake in progress
// when ctx ends (gws itself only knows a fixed handshake timeout).
type dialer struct {
	ctx context.Context
	nd  net.Dialer

	mu      sync.Mutex
	conn    net.Conn // guarded by mu
	aborted bool     // guarded by mu
}

func (d *dialer) Dial(network, addr string) (net.Conn, error) {
	conn, err := d.nd.DialContext(d.ctx, network, addr)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.aborted {
		conn.Close()
		return nil, d.ctx.Err()
	}
	d.conn = conn
	return conn, nil
}

func (d *dialer) abort() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.aborted = true
	if d.conn != nil {
		d.conn.Close()
	}
}

// websocketURL turns the http(s) base URL into a ws(s) one.
func websocketURL(base string) string {
	if rest, ok := strings.CutPrefix(base, "https://"); ok {
		return "wss://" + rest
	}
	return "ws://" + strings.TrimPrefix(base, "http://")
}

func cmpOr(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}
