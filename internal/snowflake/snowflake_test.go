package snowflake_test

import (
	"sync"
	"testing"
	"time"

	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/snowflake"
)

var _ chat.IDGenerator = (*snowflake.Generator)(nil)

// stepClock is a clock that tests set by hand.
type stepClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *stepClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func newGenerator(tb testing.TB, node int64, now func() time.Time) *snowflake.Generator {
	tb.Helper()
	g, err := snowflake.New(node, now)
	if err != nil {
		tb.Fatalf("New(%d): %v", node, err)
	}
	return g
}

func TestEpochUnixMilli(t *testing.T) {
	want := time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	if snowflake.EpochUnixMilli != want {
		t.Fatalf("EpochUnixMilli = %d, want %d", snowflake.EpochUnixMilli, want)
	}
}

func TestNew_rejectsNodeOutOfRange(t *testing.T) {
	for _, node := range []int64{-1, snowflake.MaxNode + 1, 1 << 40} {
		if _, err := snowflake.New(node, nil); err == nil {
			t.Errorf("New(%d) succeeded, want an error", node)
		}
	}
	for _, node := range []int64{0, 1, snowflake.MaxNode} {
		if _, err := snowflake.New(node, nil); err != nil {
			t.Errorf("New(%d): %v", node, err)
		}
	}
}

func TestGenerator_NextID_concurrentIDsAreUniqueAndIncreasing(t *testing.T) {
	const goroutines, perGoroutine = 8, 100_000
	g := newGenerator(t, 7, nil)

	results := make([][]int64, goroutines)
	var wg sync.WaitGroup
	for i := range results {
		ids := make([]int64, perGoroutine)
		results[i] = ids
		wg.Go(func() {
			for j := range ids {
				ids[j] = g.NextID()
			}
		})
	}
	wg.Wait()

	seen := make(map[int64]struct{}, goroutines*perGoroutine)
	for i, ids := range results {
		for j, id := range ids {
			if id <= 0 {
				t.Fatalf("goroutine %d: id %d is not positive", i, id)
			}
			if j > 0 && id <= ids[j-1] {
				t.Fatalf("goroutine %d: id %d after %d: not increasing", i, id, ids[j-1])
			}
			if _, dup := seen[id]; dup {
				t.Fatalf("id %d handed out twice", id)
			}
			seen[id] = struct{}{}
			if n := snowflake.Node(id); n != 7 {
				t.Fatalf("Node(%d) = %d, want 7", id, n)
			}
		}
	}
}

func TestGenerator_NextID_clockGoingBackwardsStillIncreases(t *testing.T) {
	start := time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)
	clock := &stepClock{t: start}
	g := newGenerator(t, 1, clock.Now)

	var ids []int64
	for _, at := range []time.Time{
		start,
		start.Add(5 * time.Millisecond),
		start.Add(-time.Hour), // NTP stepped the clock back
		start.Add(-time.Hour),
		start.Add(2 * time.Millisecond),
		start.Add(6 * time.Millisecond),
		start.Add(time.Second),
	} {
		clock.Set(at)
		ids = append(ids, g.NextID())
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] <= ids[i-1] {
			t.Fatalf("id %d (#%d) after %d: not increasing", ids[i], i, ids[i-1])
		}
	}
	// While the clock is behind, ids keep the last millisecond seen.
	if got, want := snowflake.Time(ids[2]), start.Add(5*time.Millisecond); !got.Equal(want) {
		t.Errorf("Time of an id made while the clock was behind = %v, want %v", got, want)
	}
	// Once the clock is ahead again, ids follow it.
	if got, want := snowflake.Time(ids[6]), start.Add(time.Second); !got.Equal(want) {
		t.Errorf("Time of an id made after the clock recovered = %v, want %v", got, want)
	}
}

func TestGenerator_NextID_exhaustedSequenceBorrowsNextMillisecond(t *testing.T) {
	frozen := time.Date(2026, time.June, 1, 0, 0, 0, 0, time.UTC)
	g := newGenerator(t, snowflake.MaxNode, func() time.Time { return frozen })

	const n = 3*4096 + 10
	prev := int64(0)
	for i := range n {
		id := g.NextID()
		if id <= prev {
			t.Fatalf("id #%d = %d after %d: not increasing", i, id, prev)
		}
		prev = id
		if node := snowflake.Node(id); node != snowflake.MaxNode {
			t.Fatalf("Node(id #%d) = %d, want %d", i, node, snowflake.MaxNode)
		}
	}
	// 4096 ids per millisecond: the last id borrowed 3 milliseconds.
	if got, want := snowflake.Time(prev), frozen.Add(3*time.Millisecond); !got.Equal(want) {
		t.Errorf("Time(last id) = %v, want %v", got, want)
	}
}

func TestTime_Node_decodeWhatWasEncoded(t *testing.T) {
	tests := []struct {
		name string
		node int64
		at   time.Time
	}{
		{"epoch", 0, time.UnixMilli(snowflake.EpochUnixMilli)},
		{"node 1", 1, time.Date(2026, time.February, 3, 4, 5, 6, 7_000_000, time.UTC)},
		{"max node", snowflake.MaxNode, time.Date(2030, time.December, 31, 23, 59, 59, 999_000_000, time.UTC)},
		{"far future", 512, time.Date(2095, time.January, 1, 0, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGenerator(t, tt.node, func() time.Time { return tt.at.Add(400 * time.Microsecond) })
			id := g.NextID()
			if id <= 0 {
				t.Fatalf("id = %d, want positive", id)
			}
			if got := snowflake.Node(id); got != tt.node {
				t.Errorf("Node = %d, want %d", got, tt.node)
			}
			if got := snowflake.Time(id); !got.Equal(tt.at) {
				t.Errorf("Time = %v, want %v (truncated to the millisecond)", got, tt.at)
			}
		})
	}
}

func TestGenerator_NextID_idsSortByTimeAcrossNodes(t *testing.T) {
	clock := &stepClock{t: time.Date(2026, time.May, 5, 0, 0, 0, 0, time.UTC)}
	a := newGenerator(t, snowflake.MaxNode, clock.Now)
	b := newGenerator(t, 0, clock.Now)
	first := a.NextID()
	clock.Set(clock.Now().Add(time.Millisecond))
	second := b.NextID()
	if second <= first {
		t.Fatalf("id %d of node 0 made 1ms later is not greater than %d of node %d", second, first, snowflake.MaxNode)
	}
}

func BenchmarkGenerator_NextID(b *testing.B) {
	g := newGenerator(b, 1, nil)
	for b.Loop() {
		g.NextID()
	}
}

func BenchmarkGenerator_NextID_parallel(b *testing.B) {
	g := newGenerator(b, 1, nil)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			g.NextID()
		}
	})
}
