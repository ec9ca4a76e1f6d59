package natsbus

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ensureStream creates a stream, or updates it when one of that name
// exists with another configuration (a node of a newer release, or other
// options). It does not use CreateOrUpdateStream, which rewrites the
// stream's configuration on every start: a node starting while another
// creates consumers on the stream then races with it inside nats-server
// (2.15's file store updates its configuration while a consumer store is
// being made from it; the race detector caught it in our tests). A create
// with the same configuration changes nothing.
func ensureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) error {
	return retryCreate(ctx, func() error {
		_, err := js.CreateStream(ctx, cfg)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			_, err = js.UpdateStream(ctx, cfg)
		}
		return err
	})
}

// ensureKeyValue is ensureStream for a key-value bucket.
func ensureKeyValue(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (kv jetstream.KeyValue, err error) {
	err = retryCreate(ctx, func() (err error) {
		kv, err = js.CreateKeyValue(ctx, cfg)
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.UpdateKeyValue(ctx, cfg)
		}
		return err
	})
	return kv, err
}

// The JetStream API errors a stream create gets when another create of
// the same stream is under way (nodes or workers started at once): the
// server checks the subjects before the name, and two creates can race
// to make the stream's file store.
const (
	jsErrStreamSubjectOverlap jetstream.ErrorCode = 10065
	jsErrStreamStoreFailed    jetstream.ErrorCode = 10049
)

// retryCreate runs create again while it fails as it does when another
// node is creating the same stream at that moment, for up to about 4 s (a
// busy server may take a while over the other create); a store that
// truly cannot be made fails the same way, a few seconds later.
//
// A request the server did not answer within the JetStream API's own
// timeout (5 s, while ctx lives on) is tried again too, twice at most: a
// server busy with other nodes' creates, or just restarted, may let one
// go unanswered.
func retryCreate(ctx context.Context, create func() error) error {
	timeouts := 0
	for attempt := 1; ; attempt++ {
		err := create()
		if errors.Is(err, context.DeadlineExceeded) {
			timeouts++
		}
		if err == nil || attempt == 8 || timeouts == 3 || ctx.Err() != nil || !raceOrTimeout(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt) * 150 * time.Millisecond):
		}
	}
}

// raceOrTimeout reports whether a create's error is one that retryCreate
// tries again after.
func raceOrTimeout(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode == jsErrStreamSubjectOverlap || apiErr.ErrorCode == jsErrStreamStoreFailed
	}
	return errors.Is(err, context.DeadlineExceeded)
}
