package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/core"
	"github.com/natter-chat/natter/internal/protocol"
)

// statusOf is the one table from error code to HTTP status.
var statusOf = map[chat.Code]int{
	chat.CodeInvalidArgument:      http.StatusBadRequest,
	chat.CodeInvalidJSON:          http.StatusBadRequest,
	chat.CodeTooLarge:             http.StatusRequestEntityTooLarge,
	chat.CodeUnauthenticated:      http.StatusUnauthorized,
	chat.CodeTokenExpired:         http.StatusUnauthorized,
	chat.CodeInvalidCredentials:   http.StatusUnauthorized,
	chat.CodeRefreshReused:        http.StatusUnauthorized,
	chat.CodeForbidden:            http.StatusForbidden,
	chat.CodeBlocked:              http.StatusForbidden,
	chat.CodeNotFound:             http.StatusNotFound,
	chat.CodeUsernameTaken:        http.StatusConflict,
	chat.CodeConflict:             http.StatusConflict,
	chat.CodeInvalidUsername:      http.StatusBadRequest,
	chat.CodeWeakPassword:         http.StatusBadRequest,
	chat.CodeRateLimited:          http.StatusTooManyRequests,
	chat.CodeUnknownType:          http.StatusBadRequest,
	chat.CodeUnavailable:          http.StatusServiceUnavailable,
	chat.CodeResyncRequired:       http.StatusGone,
	chat.CodeInternal:             http.StatusInternalServerError,
	chat.CodePushNotConfigured:    http.StatusBadRequest,
	chat.CodeUnsupportedMediaType: http.StatusUnsupportedMediaType,
}

// StatusOf returns the HTTP status for an error code.
func StatusOf(code chat.Code) int {
	if s, ok := statusOf[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := chat.ErrorCode(err)
	if code == chat.CodeInternal || code == chat.CodeUnavailable {
		a.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	a.met.Errors.WithLabelValues(string(code)).Inc()
	body := protocol.ErrorBody{Error: protocol.ErrorDetail{Code: string(code), Message: chat.ErrorMessage(err)}}
	var re *core.RetryError
	if errors.As(err, &re) {
		secs := int((re.After + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		body.Error.RetryAfter = secs
	}
	if code == chat.CodeUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	var rs *core.ResyncError
	if errors.As(err, &rs) {
		body.Error.Cursor = &rs.Cursor
	}
	writeJSON(w, StatusOf(code), body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
