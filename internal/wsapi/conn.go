package wsapi

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lxzan/gws"
	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/core"
	"github.com/natter-chat/natter/internal/protocol"
	"golang.org/x/time/rate"
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
	pending   atomic.Int64  // frames queued, not yet written
	inflight  atomic.Int64  // sends awaiting their ack
	slow      atomic.Bool   // set once the queue overflowed
	authTimer *time.Timer   // closes an unauthenticated connection; nil after the header auth
	frames    *rate.Limiter // frames per second this connection may send
	statusLim *rate.Limiter // presence changes this connection may make
	lastSeen  atomic.Int64  // unix nanos of the last frame or pong from the client
	away      atomic.Bool   // the client said "away"
	autoAway  atomic.Bool   // the server marked it away for missed heartbeats
	// The pong owed to the client's latest ping, and whether a write of it
	// is queued: at most one is (RFC 6455 allows answering only the latest
	// ping), so a client that pings without reading cannot grow the write
	// queue.
	pong       atomic.Pointer[[]byte]
	pongQueued atomic.Bool

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
	c.touch()
	if err := c.ws.svc.Connected(ctx, c.principal, c.id); err != nil {
		c.ws.log.Warn("presence update failed", "user", c.principal.User, "err", err)
	}
	return nil
}

// touch records activity from the client; a connection marked away for
// missed heartbeats comes back.
func (c *conn) touch() {
	c.lastSeen.Store(time.Now().UnixNano())
	if c.autoAway.Load() && c.autoAway.CompareAndSwap(true, false) && !c.away.Load() {
		c.reportStatus(chat.StatusOnline)
	}
}

// heartbeat is called by the pinger: a connection silent for awayAfter
// (its pongs missing) is reported away.
func (c *conn) heartbeat(now time.Time, awayAfter time.Duration) {
	if !c.authed.Load() || c.autoAway.Load() || c.away.Load() {
		return
	}
	if now.Sub(time.Unix(0, c.lastSeen.Load())) > awayAfter && c.autoAway.CompareAndSwap(false, true) {
		c.reportStatus(chat.StatusAway)
	}
}

func (c *conn) reportStatus(st chat.Status) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.ws.svc.SetStatus(ctx, c.principal, c.id, st); err != nil {
		c.ws.log.Warn("presence update failed", "user", c.principal.User, "err", err)
	}
}

// setStatus handles {"type":"presence","status":S}.
func (c *conn) setStatus(f protocol.ClientFrame) {
	if !c.statusLim.Allow() {
		c.fail(f.Ref, &core.RetryError{Err: chat.Errorf(chat.CodeRateLimited, "presence changes too often"), After: time.Second})
		return
	}
	st := chat.Status(f.Status)
	if st != chat.StatusOnline && st != chat.StatusAway {
		c.fail(f.Ref, chat.Errorf(chat.CodeInvalidArgument, `status must be "online" or "away"`))
		return
	}
	c.away.Store(st == chat.StatusAway)
	c.reportStatus(st)
	if len(f.Ref) > 0 {
		c.Deliver(protocol.Encode(protocol.OKFrame{Type: protocol.TypeAck, Ref: f.Ref}))
	}
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
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.ws.svc.Disconnected(ctx, c.principal, c.id); err != nil {
			c.ws.log.Warn("presence update failed", "user", c.principal.User, "err", err)
		}
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
	c.touch()
	if !c.frames.Allow() {
		c.fail(f.Ref, &core.RetryError{Err: chat.Errorf(chat.CodeRateLimited, "too many frames on this connection"), After: time.Second})
		return
	}
	if f.Type == protocol.TypeSend {
		if c.inflight.Add(1) > c.ws.opts.MaxInflight {
			c.inflight.Add(-1)
			c.ws.met.Sends.WithLabelValues(string(chat.CodeRateLimited)).Inc()
			c.fail(f.Ref, &core.RetryError{Err: chat.Errorf(chat.CodeRateLimited, "too many sends awaiting their ack on this connection"), After: time.Second})
			return
		}
		c.ws.dispatch.handle(c.principal, f, func(frame []byte) { c.inflight.Add(-1); c.Deliver(frame) })
		return
	}
	if f.Type == protocol.TypePresence {
		c.setStatus(f)
		return
	}
	c.ws.dispatch.handle(c.principal, f, c.Deliver)
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
	c.socket.Async(func() {
		_ = c.socket.SetWriteDeadline(time.Now().Add(time.Second))
		_ = c.socket.WriteClose(code, []byte(reason))
	})
}

// ping queues a ping to the client (the pinger calls it once per
// PingInterval).
func (c *conn) ping() {
	c.socket.Async(func() { c.writeControl(gws.OpcodePing, nil) })
}

// answerPing queues a pong with payload, or replaces the payload of the
// pong already queued.
func (c *conn) answerPing(payload []byte) {
	p := bytes.Clone(payload) // the reader reuses payload's buffer
	c.pong.Store(&p)
	if !c.pongQueued.CompareAndSwap(false, true) {
		return
	}
	c.socket.Async(func() {
		// Cleared before the payload is taken: a ping that comes in
		// between queues a write of its own, which finds nothing left.
		c.pongQueued.Store(false)
		if p := c.pong.Swap(nil); p != nil {
			c.writeControl(gws.OpcodePong, *p)
		}
	})
}

// writeControl writes a ping or pong; it runs on the write queue. Every
// write sets its own deadline: the last frame's is still on the socket,
// and a write after it passed would fail and end a healthy connection
// that was merely quiet for longer than WriteTimeout. A slow consumer's
// connection is closing and keeps its short deadline.
func (c *conn) writeControl(op gws.Opcode, payload []byte) {
	if c.slow.Load() {
		return
	}
	_ = c.socket.SetWriteDeadline(time.Now().Add(c.ws.opts.WriteTimeout))
	if c.slow.Load() {
		// closeSlow ran meanwhile: put its short deadline back.
		_ = c.socket.SetWriteDeadline(time.Now().Add(time.Second))
		return
	}
	if op == gws.OpcodePong {
		_ = c.socket.WritePong(payload)
	} else {
		_ = c.socket.WritePing(payload)
	}
}

// fail answers a frame with an error frame.
func (c *conn) fail(ref []byte, err error) {
	c.Deliver(c.ws.dispatch.errorFrame(c.principal, ref, err))
}
