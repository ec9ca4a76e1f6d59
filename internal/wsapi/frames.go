package wsapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"golang.org/x/time/rate"

	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/core"
	"github.com/natter-chat/natter/internal/protocol"
)

// minSweep is the size of the per-user limiter map below which it is
// never swept.
const minSweep = 1024

// ServeFrames serves POST /v1/frames, the request half of the fallback
// transport: the body is one client frame, of the same types and with the
// same answers as on the WebSocket (send, read, delivered, sync, changes,
// edit, delete, react, typing, presence, ping).
//
// The request must carry "Authorization: Bearer <token>", and may name
// the caller's event stream in X-Natter-Conn (its id, from the stream's
// ready frame). With a stream, the frame acts as if it came on that
// connection: a sent message is not echoed to it, presence applies to it,
// and its frame rate limit and send window apply. Without one (or naming
// a stream of another user, or one on another node, which are ignored),
// frames are limited per user, and presence frames are refused.
//
// Transport problems get an HTTP status and a JSON error body like the
// REST API: 401 (token), 403 (origin), 413 too_large (over MaxFrameBytes),
// 400 invalid_json (not UTF-8 JSON). Otherwise the answer frame (ack,
// error, messages, changes or pong) is the body of a 200, so a client
// handles it as it would on the WebSocket; a frame that has no answer
// (typing or presence without a ref) gets 204. A send is answered after
// its commit, as on the WebSocket; if the client goes away first, the
// message is still stored and a retry with the same client_id returns it.
func (ws *Handler) ServeFrames(w http.ResponseWriter, r *http.Request) {
	if !ws.originAllowed(r) {
		writeHTTPError(w, http.StatusForbidden, chat.CodeForbidden, "origin not allowed")
		return
	}
	p, ok := ws.authorize(w, r)
	if !ok {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(ws.opts.MaxFrameBytes)))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			writeHTTPError(w, http.StatusRequestEntityTooLarge, chat.CodeTooLarge, "a frame may be at most "+strconv.Itoa(ws.opts.MaxFrameBytes)+" bytes")
			return
		}
		writeHTTPError(w, http.StatusBadRequest, chat.CodeInvalidJSON, "cannot read the body")
		return
	}
	var f protocol.ClientFrame
	if !utf8.Valid(body) || json.Unmarshal(body, &f) != nil {
		ws.met.FramesIn.WithLabelValues("invalid").Inc()
		writeHTTPError(w, http.StatusBadRequest, chat.CodeInvalidJSON, "the body is not a JSON frame")
		return
	}
	s := ws.streamOf(r, p.User)
	if s != nil {
		p.Conn = s.id
	}
	if !protocol.ValidRef(f.Ref) {
		ws.met.FramesIn.WithLabelValues("invalid").Inc()
		writeFrame(w, ws.dispatch.errorFrame(p, nil, chat.Errorf(chat.CodeInvalidArgument, "ref must be a JSON string or number of at most %d bytes", protocol.MaxRefBytes)))
		return
	}
	ws.met.FramesIn.WithLabelValues(frameLabel(f.Type)).Inc()
	writeFrame(w, ws.answer(r.Context(), p, s, f))
}

// answer dispatches f for p, posted naming stream s (nil for none), and
// returns its answer frame, or nil when it has none or ctx ended first.
func (ws *Handler) answer(ctx context.Context, p core.Principal, s *stream, f protocol.ClientFrame) []byte {
	limiter := ws.userLimiter(p.User)
	if s != nil {
		limiter = s.frames
	}
	if !limiter.Allow() {
		return ws.dispatch.errorFrame(p, f.Ref, &core.RetryError{Err: chat.Errorf(chat.CodeRateLimited, "too many frames"), After: time.Second})
	}
	if f.Type == protocol.TypePresence {
		return s.setStatus(ws, p, f)
	}
	done := func() {}
	if f.Type == protocol.TypeSend && s != nil {
		if s.inflight.Add(1) > ws.opts.MaxInflight {
			s.inflight.Add(-1)
			ws.met.Sends.WithLabelValues(string(chat.CodeRateLimited)).Inc()
			return ws.dispatch.errorFrame(p, f.Ref, &core.RetryError{Err: chat.Errorf(chat.CodeRateLimited, "too many sends awaiting their ack on this connection"), After: time.Second})
		}
		done = func() { s.inflight.Add(-1) }
	}
	// The dispatcher answers every frame once (a send's answer comes
	// later, from another goroutine), except typing without a ref, which
	// it answers only with an error, before handle returns.
	ch := make(chan []byte, 1)
	ws.dispatch.handle(p, f, func(frame []byte) { done(); ch <- frame })
	if f.Type == protocol.TypeTyping && len(f.Ref) == 0 {
		select {
		case frame := <-ch:
			return frame
		default:
			return nil
		}
	}
	select {
	case frame := <-ch:
		return frame
	case <-ctx.Done():
		return nil
	}
}

// setStatus handles a posted {"type":"presence","status":S}; it applies
// to stream s, which must be the caller's.
func (s *stream) setStatus(ws *Handler, p core.Principal, f protocol.ClientFrame) []byte {
	if s == nil {
		return ws.dispatch.errorFrame(p, f.Ref, chat.Errorf(chat.CodeInvalidArgument, "presence applies to a connection: name your event stream in the %s header", connHeader))
	}
	if !s.statusLim.Allow() {
		return ws.dispatch.errorFrame(p, f.Ref, &core.RetryError{Err: chat.Errorf(chat.CodeRateLimited, "presence changes too often"), After: time.Second})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ws.svc.SetStatus(ctx, s.principal, s.id, chat.Status(f.Status)); err != nil {
		return ws.dispatch.errorFrame(p, f.Ref, err)
	}
	if len(f.Ref) == 0 {
		return nil
	}
	return protocol.Encode(protocol.OKFrame{Type: protocol.TypeAck, Ref: f.Ref})
}

// userLimiter returns the frame rate limiter of user's posts that name no
// stream. Limiters that have refilled are as good as new, so the map is
// swept of them whenever it has doubled, which bounds it by the users who
// posted within the last few seconds.
func (ws *Handler) userLimiter(user chat.UserID) *rate.Limiter {
	ws.limMu.Lock()
	defer ws.limMu.Unlock()
	if l := ws.userLimit[user]; l != nil {
		return l
	}
	if len(ws.userLimit) >= ws.sweepAt {
		now := time.Now()
		for u, l := range ws.userLimit {
			if l.TokensAt(now) >= float64(l.Burst()) {
				delete(ws.userLimit, u)
			}
		}
		ws.sweepAt = max(minSweep, 2*len(ws.userLimit))
	}
	l := ws.frameLimiter()
	ws.userLimit[user] = l
	return l
}

// writeFrame answers a posted frame: 200 with the frame, or 204 without.
func writeFrame(w http.ResponseWriter, frame []byte) {
	w.Header().Set("Cache-Control", "no-store")
	if frame == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(frame)
}
