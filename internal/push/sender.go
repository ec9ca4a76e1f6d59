package push

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/natter-chat/natter/internal/chat"
)

// Payload is the notification a device receives, as JSON. Body is empty
// (and omitted) when the user asked for privacy.
type Payload struct {
	Conv      string `json:"conv"`
	Title     string `json:"title"`
	Body      string `json:"body,omitempty"`
	Count     int    `json:"count"`      // messages this notification stands for (1, or more after collapsing)
	MessageID string `json:"message_id"` // the newest of them
}

// Sender delivers one notification to one subscription of its kind.
// Send returns nil once the push service accepted it, or an error that
// Classify sorts into gone, retryable and permanent.
type Sender interface {
	Send(ctx context.Context, sub chat.PushSubscription, p Payload) error
}

// ErrGone means the push service no longer knows the subscription: it
// must be deleted.
var ErrGone = errors.New("push: subscription gone")

// RetryError is a transient failure: the same notification may be
// accepted later, after After when the service said so (zero: backoff).
type RetryError struct {
	Err   error
	After time.Duration
}

func (e *RetryError) Error() string { return "push: retryable: " + e.Err.Error() }
func (e *RetryError) Unwrap() error { return e.Err }

// statusError describes an unexpected HTTP answer without its body, which
// may echo tokens.
func statusError(service string, res *http.Response, reason string) error {
	if reason != "" {
		return fmt.Errorf("%s answered %d (%s)", service, res.StatusCode, reason)
	}
	return fmt.Errorf("%s answered %d", service, res.StatusCode)
}

// withoutURL describes a request that failed before an answer without
// the request's URL: a Web Push endpoint is a capability (whoever knows it
// can push to the device) and an APNs URL ends with the device token, and
// this error reaches logs and dead letters. The cause stays wrapped.
func withoutURL(service string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %s request: %w", service, ue.Op, ue.Err)
	}
	return fmt.Errorf("%s: %w", service, err)
}

// retryable wraps err as a RetryError, honouring a Retry-After header in
// seconds (capped at an hour).
func retryable(res *http.Response, err error) error {
	re := &RetryError{Err: err}
	if res != nil {
		if secs, perr := strconv.Atoi(res.Header.Get("Retry-After")); perr == nil && secs > 0 {
			re.After = min(time.Duration(secs)*time.Second, time.Hour)
		}
	}
	return re
}

// transient reports whether an HTTP status means "try again later".
func transient(status int) bool {
	return status == http.StatusTooManyRequests || status >= 500
}
