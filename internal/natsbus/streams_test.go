package natsbus

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Nodes started at the same moment create the same buckets and streams at
// once; every one of them must get the bucket (a create that lost the race
// failed with "subjects overlap with an existing stream", and the node
// exited).
func TestEnsure_NodesCreatingTheSameBucketsAtOnceAllSucceed(t *testing.T) {
	eachServer(t, false, func(t *testing.T, env *testEnv) {
		js, err := jetstream.New(env.connect(t))
		if err != nil {
			t.Fatal(err)
		}
		for round := range 10 {
			bucket := fmt.Sprintf("%s_race%d", env.bucket, round)
			stream := fmt.Sprintf("%s_stream%d", env.prefix, round)
			t.Cleanup(func() {
				_ = js.DeleteKeyValue(leaseCtx(t), bucket)
				_ = js.DeleteStream(leaseCtx(t), stream)
			})
			var wg sync.WaitGroup
			errs := make(chan error, 16)
			for range 8 {
				wg.Go(func() {
					js, err := jetstream.New(env.connect(t))
					if err != nil {
						errs <- err
						return
					}
					if _, err := ensureKeyValue(leaseCtx(t), js, jetstream.KeyValueConfig{Bucket: bucket, TTL: time.Minute, Storage: jetstream.FileStorage}); err != nil {
						errs <- fmt.Errorf("bucket: %w", err)
					}
					if err := ensureStream(leaseCtx(t), js, jetstream.StreamConfig{Name: stream, Subjects: []string{stream + ".>"}, Storage: jetstream.FileStorage}); err != nil {
						errs <- fmt.Errorf("stream: %w", err)
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Errorf("round %d: %v", round, err)
			}
		}
		// A different configuration still updates the bucket.
		kv, err := ensureKeyValue(leaseCtx(t), js, jetstream.KeyValueConfig{Bucket: env.bucket + "_race0", TTL: 2 * time.Minute, Storage: jetstream.FileStorage})
		if err != nil {
			t.Fatal(err)
		}
		st, err := kv.Status(leaseCtx(t))
		if err != nil || st.TTL() != 2*time.Minute {
			t.Fatalf("bucket TTL after an update: %v, %v; want 2m", st, err)
		}
	})
}
