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
	// stops reading (answers to requests wait too) and the server will
	// eventually close the connection with CloseSlowConsumer.
	OnEvent func(ServerFrame)
	// EventBuffer is how many pushed frames may wait for OnEvent. Zero
	// means 256.
	EventBuffer int
	// LocalAddr is the source IP address to connect from, e.g. "127.0.0.2",
	// so that a load test can open more connections than one address has
	// ephemeral ports. Empty means the system's choice.
	LocalAddr string
	// ReadBufferSize is the size of the connection's read buffer in bytes;
	// larger frames are still read whole. Zero means 1024.
	ReadBufferSize int
}

// Conn is an authenticated WebSocket connection to the server. Its
// methods are safe for concurrent use; many requests may be in flight at
// once, each matched to its answer by a ref.
//
// A Conn owns two goroutines: the reader, and (when OnEvent is set) the
// event dispatcher. Close stops both. When the connection ends, every
// waiting request fails with an error matching ErrClosed.
type Conn struct {
	ws      *gws.Conn
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

// Connect opens a WebSocket connection authenticated with the stored
// access token and returns once the server has sent its ready frame.
// A rejected token gives an *Error with code "unauthenticated" (or the
// server's error code) and, when the server closed the connection, a
// *CloseError in the chain too. ctx bounds the dial, the handshake and
// the wait for ready (each also at most 10s), not the life of the Conn.
func (c *Client) Connect(ctx context.Context, opts ConnOptions) (*Conn, error) {
	const op = "ws connect"
	if c.badURL != nil {
		return nil, fmt.Errorf("natter: %s: %w", op, c.badURL)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("natter: %s: %w", op, err)
	}
	d := &dialer{ctx: ctx, nd: net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}}
	if opts.LocalAddr != "" {
		ip := net.ParseIP(opts.LocalAddr)
		if ip == nil {
			return nil, fmt.Errorf("natter: %s: local address %q is not an IP address", op, opts.LocalAddr)
		}
		d.nd.LocalAddr = &net.TCPAddr{IP: ip}
	}
	handshakeTimeout := 10 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		handshakeTimeout = min(handshakeTimeout, time.Until(dl))
	}
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
		HandshakeTimeout: max(handshakeTimeout, time.Millisecond),
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
	conn.ws = ws
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

// start launches the reader and the dispatcher.
func (c *Conn) start() {
	go func() {
		defer close(c.readDone)
		c.ws.ReadLoop()
		c.finish(nil) // in case gws ended without calling OnClose
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

// Close closes the connection (code 1000), fails waiting requests, and
// waits for the Conn's goroutines to end, except that it does not wait
// for an OnEvent call in progress (so that OnEvent may call Close): the
// dispatcher ends as soon as that call returns, and delivers nothing
// more. It is safe to call more than once; it always returns nil.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		close(c.closing)
		nc := c.ws.NetConn()
		// A blocked writer (a server that does not read) must not hold
		// Close up for long.
		_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
		_ = c.ws.WriteClose(1000, nil)
		_ = nc.Close()
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
	select {
	case <-c.closing: // closed by this side: nothing to report
	default:
		if errors.As(cause, &gce) {
			ce.Code, ce.Reason = int(gce.Code), string(gce.Reason)
		} else {
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
// it. An error frame becomes an *Error. Writing the frame is not
// interrupted by ctx; waiting for the answer is.
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
	ch := make(chan ServerFrame, 1)
	c.mu.Lock()
	if c.closeErr != nil {
		ce := c.closeErr
		c.mu.Unlock()
		return ServerFrame{}, fmt.Errorf("natter: %s: %w", op, ce)
	}
	c.pending[id] = ch
	c.mu.Unlock()

	if err := c.ws.WriteMessage(gws.OpcodeText, b); err != nil {
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
		return answer(op, r)
	case <-ctx.Done():
		c.forget(id)
		return ServerFrame{}, fmt.Errorf("natter: %s: %w", op, ctx.Err())
	case <-c.done:
		select {
		case r := <-ch: // answered just before the end
			return answer(op, r)
		default:
			return ServerFrame{}, fmt.Errorf("natter: %s: %w", op, c.Err())
		}
	}
}

func answer(op string, r ServerFrame) (ServerFrame, error) {
	if r.Type == protocol.TypeError {
		return r, &Error{Op: op, Code: r.Code, Message: r.ErrorText(), RetryAfter: time.Duration(r.RetryAfter) * time.Second}
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

// handle routes one frame read from the network. It runs on the reader.
func (c *Conn) handle(data []byte) {
	var f ServerFrame
	if err := json.Unmarshal(data, &f); err != nil {
		return // not a frame of the protocol; nothing can answer it
	}
	if !c.readySeen {
		switch f.Type {
		case protocol.TypeReady:
			c.readySeen = true
			c.user, c.session = f.User, f.Session
			close(c.ready)
			return
		case protocol.TypeError:
			c.mu.Lock()
			if c.connectErr == nil {
				c.connectErr = &Error{Code: f.Code, Message: f.ErrorText(), RetryAfter: time.Duration(f.RetryAfter) * time.Second}
			}
			c.mu.Unlock()
		}
	}
	if len(f.Ref) > 0 && c.deliver(f.Ref, f) {
		return
	}
	if c.events == nil {
		return
	}
	select {
	case c.events <- f:
	case <-c.closing:
	}
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
