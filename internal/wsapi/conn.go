package wsapi

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lxzan/gws"
	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/core"
	"github.com/natter-chat/natter/internal/protocol"
)

// conn is one client connection. Its frames are read and handled in order
// by gws's read loop; writes go through gws's per-connection queue, which
// conn bounds with pending.
type conn struct {
	id        int64
	ws        *Handler
	socket    *gws.Conn
	opened    time.Time
	principal core.Principal
	authed    atomic.Bool
	pending   atomic.Int64 // frames queued, not yet written
	inflight  atomic.Int64 // sends awaiting their ack
	slow      atomic.Bool  // set once the queue overflowed
	authTimer *time.Timer  // closes an unauthenticated connection; nil after the header auth

	mu         sync.Mutex // guards unregister
	unregister func()
	stopped    bool
}

var _ interface{ Deliver([]byte) } = (*conn)(nil)

func (c *conn) User() chat.UserID { return c.principal.User }

// ID implements hub.Conn.
func (c *conn) ID() int64 { return c.id }

// Session implements hub.Conn.
func (c *conn) Session() chat.SessionID { return c.principal.Session }

// Revoke implements hub.Conn: the session ended, so the connection does.
func (c *conn) Revoke() { c.closeWith(protocol.CloseSessionRevoked, "session ended") }

// start registers the authenticated connection with the hub and greets it.
func (c *conn) start(ctx context.Context) error {
	unregister, err := c.ws.hub.Register(ctx, c)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if c.stopped { // closed while registering
		c.mu.Unlock()
		unregister()
		return errClosed
	}
	c.unregister = unregister
	c.mu.Unlock()
	c.Deliver(protocol.Encode(protocol.ReadyFrame{Type: protocol.TypeReady, User: c.principal.User.String(), Session: c.principal.Session.String()}))
	return nil
}

// stop unregisters the connection; it is called once it has closed.
func (c *conn) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopped = true
	if c.authTimer != nil {
		c.authTimer.Stop()
	}
	if c.unregister != nil {
		c.unregister()
		c.unregister = nil
	}
}

// Deliver queues frame without blocking. When more than QueueFrames are
// waiting the client is not reading: the connection is closed as a slow
// consumer and the client will reconnect and sync from its cursor.
func (c *conn) Deliver(frame []byte) {
	if c.slow.Load() {
		return
	}
	if c.pending.Add(1) > c.ws.opts.QueueFrames {
		c.pending.Add(-1)
		c.closeSlow()
		return
	}
	c.ws.met.FramesOut.Inc()
	c.socket.Async(func() { c.write(frame) })
}

// write runs on the connection's write queue.
func (c *conn) write(frame []byte) {
	defer c.pending.Add(-1)
	if c.slow.Load() {
		return
	}
	_ = c.socket.SetWriteDeadline(time.Now().Add(c.ws.opts.WriteTimeout))
	_ = c.socket.WriteMessage(gws.OpcodeText, frame)
}

func (c *conn) closeSlow() {
	if !c.slow.CompareAndSwap(false, true) {
		return
	}
	c.ws.met.SlowConsumers.Inc()
	c.ws.log.Info("closing slow consumer", "user", c.principal.User)
	// A write blocked on a full TCP buffer gives up within a second; the
	// close frame is then written (if the socket still takes it) and the
	// connection ends either way.
	_ = c.socket.SetWriteDeadline(time.Now().Add(time.Second))
	c.socket.Async(func() { _ = c.socket.WriteClose(protocol.CloseSlowConsumer, []byte("slow consumer")) })
}

// handle dispatches one frame.
func (c *conn) handle(data []byte) {
	var f protocol.ClientFrame
	if err := json.Unmarshal(data, &f); err != nil {
		c.ws.met.FramesIn.WithLabelValues("invalid").Inc()
		c.fail(nil, chat.Errorf(chat.CodeInvalidJSON, "frame is not a valid JSON object"))
		return
	}
	if !protocol.ValidRef(f.Ref) {
		c.ws.met.FramesIn.WithLabelValues("invalid").Inc()
		c.fail(nil, chat.Errorf(chat.CodeInvalidArgument, "ref must be a JSON string or number of at most %d bytes", protocol.MaxRefBytes))
		return
	}
	c.ws.met.FramesIn.WithLabelValues(frameLabel(f.Type)).Inc()
	if !c.authed.Load() {
		c.authenticate(f)
		return
	}
	_ = c.socket.SetReadDeadline(time.Now().Add(c.ws.opts.IdleTimeout))
	switch f.Type {
	case protocol.TypeSend:
		c.send(f)
	case protocol.TypeRead:
		c.read(f)
	case protocol.TypeSync:
		c.sync(f)
	case protocol.TypePing:
		c.Deliver(protocol.Encode(protocol.PongFrame{Type: protocol.TypePong, Ref: f.Ref}))
	case protocol.TypeAuth:
		c.fail(f.Ref, chat.Errorf(chat.CodeInvalidArgument, "already authenticated"))
	default:
		c.fail(f.Ref, chat.Errorf(chat.CodeUnknownType, "unknown frame type %q", truncate(f.Type, 32)))
	}
}

func frameLabel(t string) string {
	switch t {
	case protocol.TypeAuth, protocol.TypeSend, protocol.TypeRead, protocol.TypeSync, protocol.TypePing:
		return t
	}
	return "unknown"
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// authenticate handles the first frame of a connection that came without
// an Authorization header (browsers): it must be {"type":"auth","token":T}.
func (c *conn) authenticate(f protocol.ClientFrame) {
	if f.Type != protocol.TypeAuth {
		c.closeWith(protocol.CloseUnauthenticated, "authenticate first")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p, err := c.ws.svc.Authenticate(ctx, f.Token)
	if err != nil {
		// As on the upgrade: an expired token says so, so that the client
		// refreshes it instead of asking the user to log in again.
		code := chat.CodeUnauthenticated
		if chat.IsCode(err, chat.CodeTokenExpired) {
			code = chat.CodeTokenExpired
		}
		c.fail(f.Ref, chat.Errorf(code, "a valid access token is required"))
		c.closeWith(protocol.CloseUnauthenticated, "unauthenticated")
		return
	}
	p.Conn = c.id
	c.principal = p
	c.authed.Store(true)
	if c.authTimer != nil {
		c.authTimer.Stop()
	}
	if err := c.start(ctx); err != nil {
		c.closeWith(1011, "unavailable")
		return
	}
	_ = c.socket.SetReadDeadline(time.Now().Add(c.ws.opts.IdleTimeout))
}

func (c *conn) closeWith(code uint16, reason string) {
	c.socket.Async(func() { _ = c.socket.WriteClose(code, []byte(reason)) })
}

// fail answers a frame with an error frame.
func (c *conn) fail(ref []byte, err error) {
	code := chat.ErrorCode(err)
	if code == chat.CodeInternal {
		c.ws.log.Error("ws request failed", "user", c.principal.User, "err", err)
	}
	c.ws.met.Errors.WithLabelValues(string(code)).Inc()
	retry := 0
	var re *core.RetryError
	if errors.As(err, &re) {
		retry = int((re.After + time.Second - 1) / time.Second)
	}
	c.Deliver(protocol.AppendErrorFrame(nil, ref, code, chat.ErrorMessage(err), retry))
}

func (c *conn) send(f protocol.ClientFrame) {
	start := time.Now()
	conv, err := chat.ParseID("conv", f.Conv)
	if err != nil {
		c.ws.met.Sends.WithLabelValues(string(chat.CodeInvalidArgument)).Inc()
		c.fail(f.Ref, err)
		return
	}
	if c.inflight.Add(1) > c.ws.opts.MaxInflight {
		c.inflight.Add(-1)
		c.ws.met.Sends.WithLabelValues(string(chat.CodeRateLimited)).Inc()
		c.fail(f.Ref, &core.RetryError{Err: chat.Errorf(chat.CodeRateLimited, "too many sends awaiting their ack on this connection"), After: time.Second})
		return
	}
	ref := f.Ref
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	c.ws.svc.SendAsync(ctx, c.principal, chat.ConversationID(conv), f.ClientID, f.Text, func(r core.SendResult, err error) {
		cancel()
		c.inflight.Add(-1)
		if err != nil {
			c.ws.met.Sends.WithLabelValues(string(chat.ErrorCode(err))).Inc()
			c.fail(ref, err)
			return
		}
		result := "ok"
		if r.Duplicate {
			result = "duplicate"
		}
		c.ws.met.Sends.WithLabelValues(result).Inc()
		c.Deliver(protocol.AppendAckFrame(make([]byte, 0, 256+len(r.Message.Text)), ref, &r.Message, r.Duplicate))
		c.ws.met.SendLatency.Observe(time.Since(start).Seconds())
	})
}

func (c *conn) read(f protocol.ClientFrame) {
	conv, err := chat.ParseID("conv", f.Conv)
	if err != nil {
		c.fail(f.Ref, err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := c.ws.svc.MarkRead(ctx, c.principal, chat.ConversationID(conv), f.Seq)
	if err != nil {
		c.fail(f.Ref, err)
		return
	}
	c.Deliver(protocol.Encode(protocol.ReadAckFrame{Type: protocol.TypeAck, Ref: f.Ref, Conv: f.Conv, ReadSeq: m.ReadSeq}))
}

func (c *conn) sync(f protocol.ClientFrame) {
	conv, err := chat.ParseID("conv", f.Conv)
	if err != nil {
		c.fail(f.Ref, err)
		return
	}
	if f.After < 0 {
		c.fail(f.Ref, chat.Errorf(chat.CodeInvalidArgument, "after must not be negative"))
		return
	}
	limit := f.Limit
	if limit < 0 {
		c.fail(f.Ref, chat.Errorf(chat.CodeInvalidArgument, "limit must not be negative"))
		return
	}
	if limit == 0 {
		limit = core.MaxHistoryLimit
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msgs, more, err := c.ws.svc.History(ctx, c.principal, chat.MessageQuery{Conv: chat.ConversationID(conv), After: f.After, Forward: true, Limit: limit})
	if err != nil {
		c.fail(f.Ref, err)
		return
	}
	c.Deliver(protocol.Encode(protocol.MessagesFrame{Type: protocol.TypeMessages, Ref: f.Ref, Conv: f.Conv, Messages: protocol.FromMessages(msgs), HasMore: more}))
}
