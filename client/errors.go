package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Error is a failure the server reported: an HTTP error body
// {"error":{"code":..}} or a WebSocket error frame.
type Error struct {
	Op         string        // what was attempted, e.g. "POST /v1/accounts" or "ws send"
	Status     int           // the HTTP status; 0 for a WebSocket error frame
	Code       string        // the stable snake_case code, e.g. "rate_limited"
	Message    string        // the server's human-readable message
	RetryAfter time.Duration // how long to wait before retrying; zero when not given
	// Cursor, for resync_required, is where to continue the sync stream
	// after reloading the conversation list and history.
	Cursor int64
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("natter: ")
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	if e.Status != 0 {
		b.WriteString(strconv.Itoa(e.Status))
		b.WriteByte(' ')
	}
	b.WriteString(e.Code)
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	return b.String()
}

// ErrorCode returns the server's error code carried by err (the Code of
// the first *Error in its chain), or "" when err is nil or did not come
// from the server (a network failure, a dropped connection, a cancelled
// context).
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// ErrClosed is matched (with errors.Is) by every error a Conn returns
// because its connection ended, including *CloseError.
var ErrClosed = errors.New("natter: connection closed")

// CloseError says that a WebSocket connection ended. Code is the close
// code the server sent (e.g. CloseSlowConsumer), or 0 when the connection
// ended without one (network failure, or closed by this side).
type CloseError struct {
	Code   int
	Reason string
	cause  error // the network error that ended the connection, if any
}

func (e *CloseError) Error() string {
	if e.Code == 0 {
		if e.cause != nil {
			return "natter: connection closed: " + e.cause.Error()
		}
		return "natter: connection closed"
	}
	if e.Reason == "" {
		return fmt.Sprintf("natter: connection closed by the server with code %d", e.Code)
	}
	return fmt.Sprintf("natter: connection closed by the server with code %d: %s", e.Code, e.Reason)
}

// Is makes errors.Is(err, ErrClosed) true for every *CloseError.
func (e *CloseError) Is(target error) bool { return target == ErrClosed }

// Unwrap returns the network error that ended the connection, if any.
func (e *CloseError) Unwrap() error { return e.cause }

// maxErrorBody bounds how much of an error response is read.
const maxErrorBody = 64 << 10

// parseError builds the *Error for a non-2xx response from its status,
// headers and (possibly truncated or non-JSON) body. A body that is not
// an ErrorBody still yields an *Error whose code is derived from the
// status, so that callers can always switch on a code.
func parseError(op string, status int, header http.Header, body []byte) *Error {
	e := &Error{Op: op, Status: status}
	var eb ErrorBody
	if json.Unmarshal(body, &eb) == nil && eb.Error.Code != "" {
		e.Code = eb.Error.Code
		e.Message = eb.Error.Message
		e.RetryAfter = time.Duration(eb.Error.RetryAfter) * time.Second
		if eb.Error.Cursor != nil {
			e.Cursor = *eb.Error.Cursor
		}
	} else {
		e.Code = codeForStatus(status)
		e.Message = strings.TrimSpace(string(body))
		if len(e.Message) > 200 {
			e.Message = e.Message[:200] + "…"
		}
		if e.Message == "" {
			e.Message = http.StatusText(status)
		}
	}
	if e.RetryAfter == 0 {
		e.RetryAfter = parseRetryAfter(header.Get("Retry-After"), time.Now())
	}
	return e
}

// codeForStatus guesses a code for an error response without a JSON body
// (from a proxy, say), using the codes the server itself would use.
func codeForStatus(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "invalid_argument"
	case http.StatusUnauthorized:
		return "unauthenticated"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusConflict:
		return "conflict"
	case http.StatusRequestEntityTooLarge:
		return "too_large"
	case http.StatusTooManyRequests:
		return "rate_limited"
	case http.StatusInternalServerError:
		return "internal"
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return "unavailable"
	}
	return "http_" + strconv.Itoa(status)
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP
// date. It returns 0 when v is empty or invalid.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
