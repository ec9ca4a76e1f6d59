package chat

import (
	"errors"
	"fmt"
)

// Code is a stable, snake_case error code that clients may switch on. The
// transports map each code to an HTTP status or an error frame in one table.
type Code string

// The error codes. They are part of the public protocol: never rename one.
const (
	CodeInvalidArgument      Code = "invalid_argument"     // malformed or out-of-range input
	CodeInvalidJSON          Code = "invalid_json"         // body or frame is not valid JSON
	CodeTooLarge             Code = "too_large"            // body, frame or text over its limit
	CodeUnauthenticated      Code = "unauthenticated"      // missing, malformed or forged token
	CodeTokenExpired         Code = "token_expired"        // access token expired: refresh it
	CodeInvalidCredentials   Code = "invalid_credentials"  // wrong username or password
	CodeRefreshReused        Code = "refresh_token_reused" // rotated refresh token presented again; the login is revoked
	CodeForbidden            Code = "forbidden"            // authenticated but not allowed (e.g. not an admin)
	CodeBlocked              Code = "blocked"              // the other user has blocked the caller
	CodeNotFound             Code = "not_found"            // does not exist, or the caller may not know it exists
	CodeUsernameTaken        Code = "username_taken"
	CodeInvalidUsername      Code = "invalid_username"
	CodeWeakPassword         Code = "weak_password"
	CodeConflict             Code = "conflict"               // the request conflicts with current state
	CodeRateLimited          Code = "rate_limited"           // slow down; retry after the given delay
	CodeUnknownType          Code = "unknown_type"           // unknown WebSocket frame type
	CodeUnavailable          Code = "unavailable"            // a backend is down or the node is draining: retry
	CodeResyncRequired       Code = "resync_required"        // the sync gap is too long to replay: reload, then sync from the given cursor
	CodeInternal             Code = "internal"               // a bug; details are logged, not returned
	CodeUnsupportedMediaType Code = "unsupported_media_type" // an upload whose bytes are not an allowed file type
)

// Error is a failure with a stable code and a message fit for users.
// Op names the operation that failed and Err the cause, for logs only.
type Error struct {
	Code    Code
	Message string
	Op      string
	Err     error
}

func (e *Error) Error() string {
	msg := string(e.Code) + ": " + e.Message
	if e.Op != "" {
		msg = e.Op + ": " + msg
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with code and a formatted user-facing message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Unavailable wraps a backend failure as a retryable unavailable error. The
// cause is kept for logs and never shown to users.
// ErrCommitUncertain is in the chain of a store error when the connection
// failed while a transaction was being committed: the write may or may not
// be stored. Such a write is not retried by the store; a caller that
// publishes events after writes must assume it may be stored unpublished
// (see LossReporter).
var ErrCommitUncertain = errors.New("the outcome of the commit is unknown")

func Unavailable(op string, err error) *Error {
	return &Error{Code: CodeUnavailable, Message: "the service is temporarily unavailable; retry", Op: op, Err: err}
}

// ErrorCode returns the code of err: the Code of the first *Error in its
// chain, or CodeInternal for any other non-nil error, or "" for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// ErrorMessage returns the user-facing message of err. For errors without
// a code it returns a generic message, never the internal text.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// IsCode reports whether err carries code.
func IsCode(err error, code Code) bool { return ErrorCode(err) == code }
