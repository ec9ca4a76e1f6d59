package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/core"
	"github.com/natter-chat/natter/internal/metrics"
)

// Options configures the API. Zero values are documented per field.
type Options struct {
	MaxBodyBytes int64        // largest request body; zero means 64 KiB
	Logger       *slog.Logger // nil means discard
	// Limit, if set, limits authenticated requests per user (key: the
	// user id); nil means none.
	Limit core.Limiter
	// Ready reports whether the node should receive traffic (/readyz).
	// Nil means "when the store answers Ping".
	Ready func(ctx context.Context) error
	// TrustedProxies are the networks of load balancers whose
	// X-Forwarded-For header is believed: the client address (which the
	// login throttle counts failures by) is the rightmost address in it
	// that is not itself a trusted proxy. Empty means the connection's
	// peer is the client, and the header is ignored.
	TrustedProxies []netip.Prefix
}

// API is the REST handler set. Create it with New and mount Routes.
type API struct {
	svc  *core.Service
	met  *metrics.Metrics
	opts Options
	log  *slog.Logger
}

// New returns the API.
func New(svc *core.Service, met *metrics.Metrics, opts Options) *API {
	if opts.MaxBodyBytes == 0 {
		opts.MaxBodyBytes = 64 << 10
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Ready == nil {
		opts.Ready = svc.Ping
	}
	return &API{svc: svc, met: met, opts: opts, log: opts.Logger}
}

// Routes registers every route on mux.
func (a *API) Routes(mux *http.ServeMux) {
	a.handle(mux, "POST /v1/accounts", false, a.register)
	a.handle(mux, "POST /v1/sessions", false, a.login)
	a.handle(mux, "POST /v1/sessions/refresh", false, a.refresh)
	a.handle(mux, "GET /v1/sessions", true, a.sessions)
	a.handle(mux, "DELETE /v1/sessions/current", true, a.logout)
	a.handle(mux, "DELETE /v1/sessions/{id}", true, a.revokeSession)
	a.handle(mux, "GET /v1/users/me", true, a.me)
	a.handle(mux, "GET /v1/users", true, a.searchUsers)
	a.handle(mux, "GET /v1/users/{id}", true, a.getUser)
	a.handle(mux, "POST /v1/conversations", true, a.createConversation)
	a.handle(mux, "GET /v1/conversations", true, a.listConversations)
	a.handle(mux, "GET /v1/conversations/{id}", true, a.getConversation)
	a.handle(mux, "POST /v1/conversations/{id}/members", true, a.addMembers)
	a.handle(mux, "DELETE /v1/conversations/{id}/members/{user}", true, a.removeMember)
	a.handle(mux, "PATCH /v1/conversations/{id}/members/{user}", true, a.setRole)
	a.handle(mux, "GET /v1/conversations/{id}/messages", true, a.history)
	a.handle(mux, "POST /v1/conversations/{id}/messages", true, a.send)
	a.handle(mux, "POST /v1/conversations/{id}/read", true, a.markRead)
	a.handle(mux, "POST /v1/conversations/{id}/delivered", true, a.markDelivered)
	a.handle(mux, "PATCH /v1/conversations/{id}", true, a.rename)
	a.handle(mux, "GET /v1/conversations/{id}/messages/{msg}", true, a.getMessage)
	a.handle(mux, "PATCH /v1/conversations/{id}/messages/{msg}", true, a.editMessage)
	a.handle(mux, "DELETE /v1/conversations/{id}/messages/{msg}", true, a.deleteMessage)
	a.handle(mux, "PUT /v1/conversations/{id}/messages/{msg}/reactions/{emoji}", true, a.react)
	a.handle(mux, "DELETE /v1/conversations/{id}/messages/{msg}/reactions/{emoji}", true, a.react)
	a.handle(mux, "GET /v1/conversations/{id}/messages/{msg}/receipts", true, a.receipts)
	a.handle(mux, "GET /v1/users/{id}/presence", true, a.presence)
	a.handle(mux, "GET /v1/presence", true, a.presences)
	a.handle(mux, "GET /v1/sync", true, a.changes)
	a.handle(mux, "GET /v1/search", true, a.search)
	a.pushRoutes(mux)
	a.peopleRoutes(mux)
	a.attachmentRoutes(mux)
	a.avatarRoutes(mux)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", a.ready)
	mux.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		a.writeError(w, r, chat.Errorf(chat.CodeNotFound, "no such endpoint"))
	})
}

func (a *API) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := a.opts.Ready(ctx); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": chat.ErrorMessage(err)})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, p core.Principal) error

// handle wraps h with recovery, metrics, the body limit and (when
// authed) token authentication.
func (a *API) handle(mux *http.ServeMux, pattern string, authed bool, h handlerFunc) {
	a.handleBody(mux, pattern, authed, a.opts.MaxBodyBytes, h)
}

// handleBody is handle with a body limit of its own (maxBody bytes).
func (a *API) handleBody(mux *http.ServeMux, pattern string, authed bool, maxBody int64, h handlerFunc) {
	route := pattern
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			if v := recover(); v != nil {
				a.log.Error("panic in handler", "route", route, "panic", v, "stack", string(debug.Stack()))
				a.writeError(sw, r, errors.New("panic"))
			}
			a.met.HTTPRequests.WithLabelValues(route, strconv.Itoa(sw.status)).Inc()
			a.met.HTTPLatency.WithLabelValues(route).Observe(time.Since(start).Seconds())
		}()
		r.Body = http.MaxBytesReader(sw, r.Body, maxBody)
		var p core.Principal
		if authed {
			var err error
			if p, err = a.authenticate(r); err != nil {
				a.writeError(sw, r, err)
				return
			}
			if a.opts.Limit != nil {
				if ok, wait := a.opts.Limit.Allow(p.User.String()); !ok {
					a.writeError(sw, r, &core.RetryError{Err: chat.Errorf(chat.CodeRateLimited, "too many requests; retry later"), After: wait})
					return
				}
			}
		}
		if err := h(sw, r, p); err != nil {
			a.writeError(sw, r, err)
		}
	})
}

func (a *API) authenticate(r *http.Request) (core.Principal, error) {
	h := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || token == "" {
		return core.Principal{}, chat.Errorf(chat.CodeUnauthenticated, "an Authorization: Bearer <access token> header is required")
	}
	return a.svc.Authenticate(r.Context(), token)
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// decode reads a JSON body strictly: one object, no unknown fields.
func decode(r *http.Request, v any) error {
	body, err := io.ReadAll(r.Body)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return chat.Errorf(chat.CodeTooLarge, "request body is larger than %d bytes", tooBig.Limit)
	}
	if err != nil {
		return chat.Errorf(chat.CodeInvalidArgument, "cannot read the request body")
	}
	if !utf8.Valid(body) {
		// encoding/json would silently turn bad bytes into U+FFFD.
		return chat.Errorf(chat.CodeInvalidJSON, "request body must be valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return chat.Errorf(chat.CodeInvalidJSON, "request body is not the expected JSON object: %s", jsonProblem(err))
	}
	if dec.More() {
		return chat.Errorf(chat.CodeInvalidJSON, "request body has data after the JSON object")
	}
	return nil
}

// jsonProblem describes a decode error without echoing the input.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return "syntax error at byte " + strconv.FormatInt(syn.Offset, 10)
	case errors.As(err, &typ):
		return "field " + strconv.Quote(typ.Field) + " has the wrong type"
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return strings.TrimPrefix(err.Error(), "json: ")
	case errors.Is(err, io.EOF):
		return "empty body"
	}
	return "malformed"
}

// clientAddr is the address of the client that made r: its peer, or,
// when the peer is a trusted proxy, the nearest untrusted hop that the
// proxies recorded in X-Forwarded-For (a client can prepend anything to
// that header, so only what trusted proxies appended counts).
func (a *API) clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if len(a.opts.TrustedProxies) == 0 || !a.trusted(host) {
		return host
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		for h := range strings.SplitSeq(v, ",") {
			hops = append(hops, strings.TrimSpace(h))
		}
	}
	for i := len(hops) - 1; i >= 0; i-- {
		addr, err := netip.ParseAddr(hops[i])
		if err != nil {
			// Some balancers append "ip:port" (or "[ipv6]:port").
			ap, perr := netip.ParseAddrPort(hops[i])
			if perr != nil {
				return host // a malformed hop: fall back to the proxy itself
			}
			addr = ap.Addr()
		}
		if !a.trusted(addr.String()) {
			return addr.Unmap().String()
		}
	}
	return host
}

func (a *API) trusted(host string) bool {
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	addr = addr.Unmap()
	for _, p := range a.opts.TrustedProxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

func pathID(r *http.Request, name string) (int64, error) {
	return chat.ParseID(name, r.PathValue(name))
}
