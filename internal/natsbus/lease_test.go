package natsbus

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/internal/chat"
)

func leaseCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Nodes starting at once each get a different id, and an id asked for by
// name is refused while another node holds it.
func TestLease_ConcurrentNodesGetDistinctIDs(t *testing.T) {
	eachServer(t, false, func(t *testing.T, env *testEnv) {
		const nodes = 24
		var mu sync.Mutex
		ids := make(map[int64]bool)
		var leases []*Lease
		var wg sync.WaitGroup
		for range nodes {
			wg.Go(func() {
				l, err := AcquireNodeID(leaseCtx(t), env.connect(t), LeaseOptions{Bucket: env.bucket, Want: -1})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if ids[l.ID()] {
					t.Errorf("node id %d handed out twice", l.ID())
				}
				ids[l.ID()] = true
				leases = append(leases, l)
			})
		}
		wg.Wait()
		if len(ids) != nodes {
			t.Fatalf("%d distinct ids for %d nodes", len(ids), nodes)
		}
		taken := leases[0].ID()
		_, err := AcquireNodeID(leaseCtx(t), env.connect(t), LeaseOptions{Bucket: env.bucket, Want: taken})
		if chat.ErrorCode(err) != chat.CodeConflict {
			t.Fatalf("asking for held id %d: %v, want a conflict", taken, err)
		}
		// Close frees the id at once.
		leases[0].Close()
		again, err := AcquireNodeID(leaseCtx(t), env.connect(t), LeaseOptions{Bucket: env.bucket, Want: taken})
		if err != nil {
			t.Fatalf("id %d after its holder closed: %v", taken, err)
		}
		again.Close()
		for _, l := range leases[1:] {
			if !l.Valid() {
				t.Errorf("lease %d not valid while refreshed", l.ID())
			}
			l.Close()
		}
	})
}

// A holder that can no longer refresh (its NATS connection is gone, as
// when the node is partitioned or dead) gives its lease up before the key
// expires, and only after it expires can another node take the id.
func TestLease_UnrefreshedLeaseIsLostBeforeAnotherNodeCanTakeIt(t *testing.T) {
	eachServer(t, false, func(t *testing.T, env *testEnv) {
		nc := env.connect(t)
		// A TTL of 6 refreshes: a refresh may fail or stall for a few
		// seconds on a loaded machine without the lease being lost.
		opts := LeaseOptions{Bucket: env.bucket, Want: 7, TTL: 6 * time.Second, Refresh: time.Second}
		l, err := AcquireNodeID(leaseCtx(t), nc, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		// Refreshes keep it past its TTL (this waits; it does not
		// synchronise anything).
		time.Sleep(7 * time.Second)
		if !l.Valid() {
			t.Fatal("a refreshed lease went invalid")
		}
		if _, err := AcquireNodeID(leaseCtx(t), env.connect(t), opts); chat.ErrorCode(err) != chat.CodeConflict {
			t.Fatalf("a live lease was handed out again: %v", err)
		}
		nc.Close()
		lostAt := time.Now()
		select {
		case <-l.Lost():
		case <-time.After(15 * time.Second):
			t.Fatal("a lease that cannot be refreshed was never given up")
		}
		if l.Valid() {
			t.Fatal("a lost lease reports valid")
		}
		// The id comes free only once the key aged out, which is after the
		// holder gave it up.
		var took *Lease
		deadline := time.Now().Add(20 * time.Second)
		for took == nil && time.Now().Before(deadline) {
			took, err = AcquireNodeID(leaseCtx(t), env.connect(t), opts)
			if err != nil && chat.ErrorCode(err) != chat.CodeConflict {
				t.Fatal(err)
			}
			time.Sleep(200 * time.Millisecond)
		}
		if took == nil {
			t.Fatal("the id of a dead holder never came free")
		}
		defer took.Close()
		t.Logf("holder gave up within %s of losing NATS; another node took id 7 after %s", time.Since(lostAt).Round(time.Millisecond), time.Since(lostAt).Round(time.Millisecond))
	})
}

// A lease whose key was changed behind its back is lost at the next
// refresh.
func TestLease_KeyChangedBehindItsBackIsLost(t *testing.T) {
	eachServer(t, false, func(t *testing.T, env *testEnv) {
		l, err := AcquireNodeID(leaseCtx(t), env.connect(t), LeaseOptions{Bucket: env.bucket, Want: 3, TTL: 3 * time.Second, Refresh: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		kv := env.leaseBucket(t)
		if _, err := kv.Put(leaseCtx(t), "node.3", []byte("intruder")); err != nil {
			t.Fatal(err)
		}
		select {
		case <-l.Lost():
		case <-time.After(5 * time.Second):
			t.Fatal("a lease whose key was overwritten is still held")
		}
	})
}

func TestLease_BadOptions(t *testing.T) {
	eachServer(t, false, func(t *testing.T, env *testEnv) {
		for _, o := range []LeaseOptions{
			{Bucket: env.bucket, Want: MaxNodeID + 1},
			{Bucket: env.bucket, TTL: time.Second, Refresh: time.Second},
		} {
			if _, err := AcquireNodeID(leaseCtx(t), env.connect(t), o); chat.ErrorCode(err) != chat.CodeInvalidArgument {
				t.Errorf("%+v: %v, want invalid_argument", o, err)
			}
		}
		if _, err := AcquireNodeID(leaseCtx(t), nil, LeaseOptions{}); err == nil || errors.Is(err, context.Canceled) {
			t.Errorf("nil connection: %v", err)
		}
	})
}

// A lease whose key vanished (bucket purged or recreated) takes it again
// if nobody else has, and a node that configures the bucket with a shorter
// TTL makes every holder follow it.
func TestLease_KeyGoneIsRetakenAndShorterBucketTTLFollowed(t *testing.T) {
	eachServer(t, false, func(t *testing.T, env *testEnv) {
		l, err := AcquireNodeID(leaseCtx(t), env.connect(t), LeaseOptions{Bucket: env.bucket, Want: 5, TTL: 6 * time.Second, Refresh: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		kv := env.leaseBucket(t)
		if err := kv.Delete(leaseCtx(t), "node.5"); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, 10*time.Second, "the lease to take its key again", func() bool {
			e, err := kv.Get(leaseCtx(t), "node.5")
			return err == nil && string(e.Value()) == l.Holder()
		})
		if !l.Valid() {
			t.Fatal("a lease that took its key again is not valid")
		}
		// Another node creates the bucket config with a 3s TTL.
		other, err := AcquireNodeID(leaseCtx(t), env.connect(t), LeaseOptions{Bucket: env.bucket, Want: 6, TTL: 3 * time.Second, Refresh: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		waitUntil(t, 10*time.Second, "the first lease to follow the bucket's shorter TTL", func() bool {
			l.mu.Lock()
			defer l.mu.Unlock()
			return l.ttl == 3*time.Second
		})
		select {
		case <-l.Lost():
			t.Fatal("the lease was lost")
		default:
		}
	})
}

// leaseBucket opens the test's lease bucket over a connection of its own,
// as another node (or an operator) would see it.
func (env *testEnv) leaseBucket(t *testing.T) jetstream.KeyValue {
	t.Helper()
	js, err := jetstream.New(env.connect(t))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(leaseCtx(t), env.bucket)
	if err != nil {
		t.Fatal(err)
	}
	return kv
}
