package wsapi

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/core"
	"github.com/natter-chat/natter/internal/protocol"
)

// The fallback transport, for networks that block WebSocket: the server's
// frames arrive as Server-Sent Events on GET /v1/events (one event per
// frame, "data: <json>\n\n"), and the client's frames go out one per
// request as POST /v1/frames (see ServeFrames). An event stream is a
// connection like a WebSocket one: it is registered with the hub, counts
// in Conns, is reported online, has the same bounded queue, ends when its
// session is revoked and is drained on shutdown.

// connHeader names, on POST /v1/frames, the caller's event stream.
const connHeader = "X-Natter-Conn"

// sseReadyFrame is the first event of a stream: protocol.ReadyFrame plus
// the stream's id, which the client names in the X-Natter-Conn header of
// its POSTs.
type sseReadyFrame struct {
	Type    string `json:"type"`
	User    string `json:"user"`
	Session string `json:"session"`
	Conn    string `json:"conn"`
}

// finalWriteTimeout bounds the last write of a stream that is ending
// (the reconnect or revocation frame): like a WebSocket close frame, it
// is sent if the client still reads, and the stream ends either way.
const finalWriteTimeout = time.Second

// stream is one open event stream; it implements hub.Conn. Its frames are
// written in order by the request's handler goroutine (serve), which owns
// the ResponseWriter; Deliver and end only queue and wake it.
type stream struct {
	id        int64
	ws        *Handler
	principal core.Principal
	frames    *rate.Limiter      // frames per second the client may post naming this stream
	statusLim *rate.Limiter      // presence changes the client may make
	inflight  atomic.Int64       // posted sends awaiting their ack
	ctx       context.Context    // the request's context; done when the stream must stop
	cancel    context.CancelFunc // ends the stream at once, without a final frame (Drain past its deadline)
	wake      chan struct{}      // 1-buffered: frames are queued or the stream must end

	mu      sync.Mutex
	queue   [][]byte // guarded by mu: frames not yet taken by the writer
	pending int64    // guarded by mu: frames queued or being written
	ending  bool     // guarded by mu: set once; nothing more is queued
	final   []byte   // guarded by mu: written last when ending, if not nil
}

var _ interface{ Deliver([]byte) } = (*stream)(nil)

// User implements hub.Conn.
func (s *stream) User() chat.UserID { return s.principal.User }

// ID implements hub.Conn.
func (s *stream) ID() int64 { return s.id }

// Session implements hub.Conn.
func (s *stream) Session() chat.SessionID { return s.principal.Session }

// Revoke implements hub.Conn: the session ended, so the stream does, after
// an error frame (code unauthenticated) that tells the client why.
func (s *stream) Revoke() {
	s.end(protocol.AppendErrorFrame(nil, nil, chat.CodeUnauthenticated, "the session has ended; log in again", 0))
}

// Deliver implements hub.Conn: it queues frame without blocking. When
// more than QueueFrames are waiting the client is not reading: the stream
// ends (without a final frame), and the client will reconnect and sync
// from its cursor.
func (s *stream) Deliver(frame []byte) {
	s.mu.Lock()
	if s.ending {
		s.mu.Unlock()
		return
	}
	if s.pending >= s.ws.opts.QueueFrames {
		s.ending, s.queue, s.final = true, nil, nil
		s.mu.Unlock()
		s.ws.met.SlowConsumers.Inc()
		s.ws.log.Info("closing slow consumer", "user", s.principal.User, "conn", s.id)
		s.signal()
		return
	}
	s.queue = append(s.queue, frame)
	s.pending++
	s.mu.Unlock()
	s.ws.met.FramesOut.Inc()
	s.signal()
}

// end makes the stream end once the frames already queued and then final
// (when not nil) are written. Only the first call has an effect.
func (s *stream) end(final []byte) {
	s.mu.Lock()
	if s.ending {
		s.mu.Unlock()
		return
	}
	s.ending, s.final = true, final
	s.mu.Unlock()
	s.signal()
}

func (s *stream) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *stream) isEnding() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ending
}

// cut ends the stream at once: the frames queued so far are dropped and
// nothing more is queued. It returns the final frame (nil for none), to
// be written alone.
func (s *stream) cut() (final []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending -= int64(len(s.queue))
	s.ending, s.queue = true, nil
	return s.final
}

// take hands the queued frames to the writer.
func (s *stream) take() (batch [][]byte, ending bool, final []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	batch, s.queue = s.queue, nil
	return batch, s.ending, s.final
}

// ServeEvents serves GET /v1/events, the event stream of the fallback
// transport. The request must carry "Authorization: Bearer <token>"
// (browsers read the stream with fetch, since EventSource cannot set
// headers; tokens never go in URLs). It answers 401, 403 (origin), 400
// (bad cursor) or 503 (draining, or the hub cannot load the user's
// conversations) with a JSON error body, and otherwise streams:
//
//   - first a ready frame with the stream's id in "conn";
//   - with ?cursor=N, the caller's sync stream after N as changes frames
//     without ref, page by page until has_more is false (or a
//     resync_required error frame carrying the cursor to continue from);
//     when the replay fails otherwise (an error frame, e.g. unavailable)
//     or the stream must end before the replay is complete, the stream
//     ends there, with its final frame if any but without the live
//     frames, whose cursors may be past the changes not replayed;
//   - then the live frames, in the order the hub delivered them, including
//     those that arrived during the replay: a change may thus be seen twice,
//     once replayed and once live, which is harmless since changes carry
//     the state of what changed, not a delta;
//   - ": ping" comments every PingInterval, so that proxies keep the stream
//     open and a dead client is noticed by a failed write.
//
// The stream ends when the client goes away, a write fails or takes
// longer than WriteTimeout, its queue overflows (slow consumer), its
// session is revoked (after an error frame with code unauthenticated) or
// the node drains (after a reconnect frame).
func (ws *Handler) ServeEvents(w http.ResponseWriter, r *http.Request) {
	if ws.draining.Load() {
		writeHTTPError(w, http.StatusServiceUnavailable, chat.CodeUnavailable, "the server is restarting; reconnect to another node")
		return
	}
	if !ws.originAllowed(r) {
		writeHTTPError(w, http.StatusForbidden, chat.CodeForbidden, "origin not allowed")
		return
	}
	p, ok := ws.authorize(w, r)
	if !ok {
		return
	}
	cursor := int64(-1)
	if q := r.URL.Query(); q.Has("cursor") {
		n, err := strconv.ParseInt(q.Get("cursor"), 10, 64)
		if err != nil || n < 0 {
			writeHTTPError(w, http.StatusBadRequest, chat.CodeInvalidArgument, "cursor must be a non-negative integer")
			return
		}
		cursor = n
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	s := &stream{ws: ws, ctx: ctx, cancel: cancel, wake: make(chan struct{}, 1),
		frames:    ws.frameLimiter(),
		statusLim: rate.NewLimiter(rate.Limit(ws.opts.StatusRate), 5)}
	if !ws.trackStream(s, p) {
		writeHTTPError(w, http.StatusServiceUnavailable, chat.CodeUnavailable, "the server is restarting; reconnect to another node")
		return
	}
	defer ws.untrackStream(s)
	unregister, err := ws.hub.Register(ctx, s)
	if err != nil {
		ws.log.Warn("event stream register failed", "user", p.User, "err", err)
		writeHTTPError(w, http.StatusServiceUnavailable, chat.CodeUnavailable, "the service is temporarily unavailable; retry")
		return
	}
	defer s.disconnected()
	defer unregister() // runs first: the hub forgets the stream, then presence does
	pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
	if err := ws.svc.Connected(pctx, s.principal, s.id); err != nil {
		ws.log.Warn("presence update failed", "user", p.User, "err", err)
	}
	pcancel()

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	s.serve(w, http.NewResponseController(w), cursor)
}

// trackStream gives s a fresh id, makes p its principal and adds it to the
// registry. It returns false, without adding it, once the node drains.
func (ws *Handler) trackStream(s *stream, p core.Principal) bool {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.draining.Load() { // Drain sets it before it takes mu to end every stream
		return false
	}
	for s.id == 0 || ws.streams[s.id] != nil {
		s.id = rand.Int64N(1<<62) + 1
	}
	p.Conn = s.id
	s.principal = p
	ws.streams[s.id] = s
	ws.met.Connections.Inc()
	return true
}

func (ws *Handler) untrackStream(s *stream) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.streams[s.id] == s {
		delete(ws.streams, s.id)
		ws.met.Connections.Dec()
	}
}

// streamOf returns the open stream of user that the request names in its
// X-Natter-Conn header, or nil: no header, an unknown id (the stream ended,
// or is on another node) and another user's stream are all ignored.
func (ws *Handler) streamOf(r *http.Request, user chat.UserID) *stream {
	v := r.Header.Get(connHeader)
	if v == "" {
		return nil
	}
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return nil
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if s := ws.streams[id]; s != nil && s.principal.User == user {
		return s
	}
	return nil
}

func (s *stream) disconnected() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.ws.svc.Disconnected(ctx, s.principal, s.id); err != nil {
		s.ws.log.Warn("presence update failed", "user", s.principal.User, "err", err)
	}
}

var pingComment = []byte(": ping\n\n")

// serve writes the stream until it ends; it runs on the request's
// goroutine. Live frames delivered before or during the ready frame and
// the replay wait in the queue, so they follow both; when the replay does
// not complete, they are dropped (see replay).
func (s *stream) serve(w io.Writer, rc *http.ResponseController, cursor int64) {
	timeout := s.ws.opts.WriteTimeout
	ready := protocol.Encode(sseReadyFrame{Type: protocol.TypeReady, User: s.principal.User.String(),
		Session: s.principal.Session.String(), Conn: strconv.FormatInt(s.id, 10)})
	if s.write(w, rc, timeout, ready) != nil {
		return
	}
	if cursor >= 0 {
		switch s.replay(w, rc, cursor) {
		case replayBroken:
			return
		case replayCut:
			// The live frames queued during the replay carry cursors past
			// changes that the replay never sent: a client that saved one
			// would skip those changes for good. They are dropped, and the
			// client comes back and replays from its last cursor.
			if final := s.cut(); final != nil {
				_ = s.write(w, rc, finalWriteTimeout, final)
			}
			return
		}
	}
	ping := time.NewTicker(s.ws.opts.PingInterval)
	defer ping.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-ping.C:
			if s.writeRaw(w, rc, timeout, pingComment) != nil {
				return
			}
		case <-s.wake:
			batch, ending, final := s.take()
			err := s.write(w, rc, timeout, batch...)
			s.mu.Lock()
			s.pending -= int64(len(batch))
			s.mu.Unlock()
			if err != nil {
				return
			}
			if ending {
				if final != nil {
					_ = s.write(w, rc, finalWriteTimeout, final)
				}
				return
			}
		}
	}
}

// replayOutcome says how a replay ended, and so what may follow it.
type replayOutcome int

const (
	// replayDone: the last page was written, or resync_required (whose
	// cursor the client continues from): the live frames follow.
	replayDone replayOutcome = iota
	// replayCut: the stream began to end before the last page, or the
	// replay failed (after an error frame): the stream ends, with its
	// final frame but without the live frames queued meanwhile.
	replayCut
	// replayBroken: a write failed or the request ended; nothing more
	// can be written.
	replayBroken
)

// replay writes the caller's sync stream after cursor as changes frames.
// resync_required is written as an error frame with its cursor, after
// which the live frames follow as after a complete replay. Any other
// failure (the store being down) is written as an error frame too, and
// then the stream ends, as it does when it began to end before the last
// page: the live frames queued meanwhile would move the client's cursor
// past the changes not replayed.
func (s *stream) replay(w io.Writer, rc *http.ResponseController, cursor int64) replayOutcome {
	for !s.isEnding() {
		ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
		cs, err := s.ws.svc.Changes(ctx, s.principal, cursor, core.MaxChangesLimit)
		cancel()
		if err != nil {
			if s.ctx.Err() != nil {
				return replayBroken
			}
			if s.write(w, rc, s.ws.opts.WriteTimeout, s.ws.dispatch.errorFrame(s.principal, nil, err)) != nil {
				return replayBroken
			}
			if chat.ErrorCode(err) == chat.CodeResyncRequired {
				return replayDone
			}
			return replayCut
		}
		page := protocol.FromChanges(cs)
		frame := protocol.Encode(protocol.ChangesFrame{Type: protocol.TypeChanges, Changes: page.Changes, Cursor: page.Cursor, HasMore: page.HasMore})
		if s.write(w, rc, s.ws.opts.WriteTimeout, frame) != nil {
			return replayBroken
		}
		if !page.HasMore || page.Cursor <= cursor {
			return replayDone
		}
		cursor = page.Cursor
	}
	return replayCut
}

var (
	dataPrefix = []byte("data: ")
	eventEnd   = []byte("\n\n")
)

// write writes frames as events and flushes them, within timeout. Frames
// are single-line JSON, so each is one data line.
func (s *stream) write(w io.Writer, rc *http.ResponseController, timeout time.Duration, frames ...[]byte) error {
	if len(frames) == 0 {
		return nil
	}
	_ = rc.SetWriteDeadline(time.Now().Add(timeout)) // net/http supports it; a wrapper that does not leaves writes unbounded
	for _, f := range frames {
		if _, err := w.Write(dataPrefix); err != nil {
			return err
		}
		if _, err := w.Write(f); err != nil {
			return err
		}
		if _, err := w.Write(eventEnd); err != nil {
			return err
		}
	}
	return rc.Flush()
}

func (s *stream) writeRaw(w io.Writer, rc *http.ResponseController, timeout time.Duration, b []byte) error {
	_ = rc.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := w.Write(b); err != nil {
		return err
	}
	return rc.Flush()
}
