package natsbus

import (
	"context"
	"errors"

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
	_, err := js.CreateStream(ctx, cfg)
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		_, err = js.UpdateStream(ctx, cfg)
	}
	return err
}

// ensureKeyValue is ensureStream for a key-value bucket.
func ensureKeyValue(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.CreateKeyValue(ctx, cfg)
	if errors.Is(err, jetstream.ErrBucketExists) {
		kv, err = js.UpdateKeyValue(ctx, cfg)
	}
	return kv, err
}
