package app

import (
	"slices"
	"testing"
	"time"

	"github.com/natter-chat/natter/internal/natsbus"
)

// stepClock is a clock that moves only when told.
type stepClock struct{ t time.Time }

func (s *stepClock) now() time.Time      { return s.t }
func (s *stepClock) add(d time.Duration) { s.t = s.t.Add(d) }
func newStepClock() *stepClock           { return &stepClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)} }
func put(node int64, holder string) natsbus.NodeChange {
	return natsbus.NodeChange{Node: node, Holder: holder}
}
func mark(node int64, holder string, pos int64) natsbus.Watermark {
	return natsbus.Watermark{Node: node, Holder: holder, Pos: pos}
}

// testClock follows nodes 1 ("self") and 2 ("b"), both with watermarks.
func testClock(t *testing.T) (*cursorClock, *stepClock) {
	t.Helper()
	sc := newStepClock()
	c := newCursorClock(10*time.Second, sc.now, nil)
	c.setSelf("self")
	c.lease(put(1, "self"))
	c.lease(put(2, "b"))
	if got := c.cursor(); got != 0 {
		t.Fatalf("cursor before any watermark = %d, want 0 (none)", got)
	}
	c.mark(mark(1, "self", 100))
	if got := c.cursor(); got != 0 {
		t.Fatalf("cursor while b's watermark is unknown = %d, want 0", got)
	}
	c.mark(mark(2, "b", 90))
	if got := c.cursor(); got != 90 {
		t.Fatalf("cursor = %d, want 90, the lowest watermark", got)
	}
	return c, sc
}

func TestCursorClock_IsTheLowestWatermark(t *testing.T) {
	c, _ := testClock(t)
	c.mark(mark(2, "b", 120))
	if got := c.cursor(); got != 100 {
		t.Fatalf("cursor = %d, want 100", got)
	}
	c.mark(mark(2, "b", 110)) // an older one (cannot happen on one connection) never lowers it
	c.mark(mark(1, "self", 130))
	if got := c.cursor(); got != 120 {
		t.Fatalf("cursor = %d, want 120", got)
	}
}

// A node that appears holds the cursor where it is, however low its first
// watermark, until that watermark arrives; the cursor never goes down.
func TestCursorClock_NewNodeHoldsTheCursorWithoutLoweringIt(t *testing.T) {
	c, _ := testClock(t)
	c.lease(put(3, "c")) // lease seen first
	c.mark(mark(1, "self", 200))
	c.mark(mark(2, "b", 200))
	if got := c.cursor(); got != 90 {
		t.Fatalf("cursor with c's watermark unknown = %d, want 90 (where it stood)", got)
	}
	c.mark(mark(3, "c", 50)) // its first watermark is older than the cursor
	if got := c.cursor(); got != 90 {
		t.Fatalf("cursor after c's first watermark 50 = %d, want 90", got)
	}
	c.mark(mark(3, "c", 300))
	if got := c.cursor(); got != 200 {
		t.Fatalf("cursor = %d, want 200", got)
	}
	c.mark(mark(4, "d", 10)) // watermark seen before the lease
	if got := c.cursor(); got != 200 {
		t.Fatalf("cursor after d's first watermark 10 = %d, want 200", got)
	}
}

// A silent node holds the cursor until its lease could have expired; then
// it is due (the clients must reconnect), and only drop releases the
// cursor. A node that speaks again meanwhile is kept.
func TestCursorClock_SilentNodeHoldsUntilExpiryThenIsDue(t *testing.T) {
	c, sc := testClock(t)
	for range 9 {
		sc.add(time.Second)
		c.mark(mark(1, "self", 500))
		if gone := c.due(); len(gone) != 0 {
			t.Fatalf("due after %v of silence: %v", sc.t.Sub(newStepClock().t), gone)
		}
		if got := c.cursor(); got != 90 {
			t.Fatalf("cursor while b is silent = %d, want its last watermark 90", got)
		}
	}
	c.restart() // this node's own connection was down: b's silence starts anew
	sc.add(9 * time.Second)
	if gone := c.due(); len(gone) != 0 {
		t.Fatalf("due 9s after a restart: %v", gone)
	}
	sc.add(time.Second)
	gone := c.due()
	if !slices.Equal(gone, []string{"b"}) {
		t.Fatalf("due = %v, want [b]", gone)
	}
	if got := c.cursor(); got != 90 {
		t.Fatalf("cursor between due and drop = %d, want 90 (clients are told first)", got)
	}
	if again := c.due(); len(again) != 0 {
		t.Fatalf("due twice: %v", again)
	}
	c.drop(gone)
	if got := c.cursor(); got != 500 {
		t.Fatalf("cursor after drop = %d, want 500", got)
	}

	// Due, then heard of again before drop: it stays.
	c.lease(put(2, "b"))
	sc.add(10 * time.Second)
	gone = c.due()
	if !slices.Equal(gone, []string{"b"}) {
		t.Fatalf("due = %v, want [b]", gone)
	}
	c.mark(mark(2, "b", 600))
	c.drop(gone)
	c.mark(mark(1, "self", 700))
	if got := c.cursor(); got != 600 {
		t.Fatalf("cursor = %d, want 600: b spoke again before the drop", got)
	}
}

// This node itself is never due, however long its own watermarks take.
func TestCursorClock_SelfIsNeverDue(t *testing.T) {
	c, sc := testClock(t)
	sc.add(time.Hour)
	c.mark(mark(2, "b", 95))
	if gone := c.due(); len(gone) != 0 {
		t.Fatalf("due = %v, want none", gone)
	}
}

// A goodbye drops its node at once, with nothing due; a lease released
// without one is due after the grace.
func TestCursorClock_GoodbyeVersusRelease(t *testing.T) {
	c, sc := testClock(t)
	c.lease(natsbus.NodeChange{Node: 2, Released: true})
	c.mark(natsbus.Watermark{Node: 2, Holder: "b", Final: true})
	if got := c.cursor(); got != 100 {
		t.Fatalf("cursor after b's goodbye = %d, want 100", got)
	}
	sc.add(time.Minute)
	if gone := c.due(); len(gone) != 0 {
		t.Fatalf("due after a goodbye: %v", gone)
	}

	c.lease(put(3, "c"))
	c.mark(mark(3, "c", 150))
	c.lease(natsbus.NodeChange{Node: 3, Released: true})
	sc.add(c.grace - time.Millisecond)
	if gone := c.due(); len(gone) != 0 {
		t.Fatalf("due before the grace: %v", gone)
	}
	sc.add(time.Millisecond)
	if gone := c.due(); !slices.Equal(gone, []string{"c"}) {
		t.Fatalf("due = %v, want [c]: released without a goodbye", gone)
	}
}

// A lease refresh that arrives after a node's goodbye (it was sent before
// the lease was released, or the watch delivered it late) does not bring
// the node back: its release then makes nobody reconnect.
func TestCursorClock_LateRefreshAfterGoodbyeIsIgnored(t *testing.T) {
	c, sc := testClock(t)
	c.lease(put(2, "b"))
	c.mark(mark(2, "b", 100))
	c.mark(natsbus.Watermark{Node: 2, Holder: "b", Final: true})
	before := c.cursor()
	c.lease(put(2, "b"))
	c.mark(mark(2, "b", 90)) // a watermark overtaken by the goodbye
	if got := c.cursor(); got != before {
		t.Fatalf("cursor after a late refresh = %d, want %d", got, before)
	}
	c.lease(natsbus.NodeChange{Node: 2, Released: true})
	sc.add(c.expiry + c.grace)
	if gone := c.due(); len(gone) != 0 {
		t.Fatalf("due after a goodbye and a late refresh: %v", gone)
	}
}

// Another holder taking a node id means the previous one lost it: it is
// due at once, and speaking again does not save it.
func TestCursorClock_ReplacedHolderIsDue(t *testing.T) {
	c, _ := testClock(t)
	c.lease(put(2, "b2"))
	c.mark(mark(2, "b", 300))
	if gone := c.due(); !slices.Equal(gone, []string{"b"}) {
		t.Fatalf("due = %v, want [b]", gone)
	}
	c.mark(mark(2, "b", 310))
	c.drop([]string{"b"})
	if got := c.cursor(); got != 90 {
		t.Fatalf("cursor = %d, want 90: b2 entered where the cursor stood", got)
	}
	c.mark(mark(2, "b2", 400))
	if got := c.cursor(); got != 100 {
		t.Fatalf("cursor = %d, want 100", got)
	}
}

// While frozen (the node may be missing events), the cursor stays where it
// was, however far the watermarks move; thawed, it follows them again.
func TestCursorClock_FreezeHoldsTheCursor(t *testing.T) {
	c, _ := testClock(t)
	c.freeze()
	c.mark(mark(2, "b", 200))
	c.mark(mark(1, "self", 200))
	if got := c.cursor(); got != 90 {
		t.Fatalf("frozen cursor = %d, want 90", got)
	}
	c.freeze() // a second suspicion keeps the first, lower cursor
	c.thaw()
	if got := c.cursor(); got != 200 {
		t.Fatalf("thawed cursor = %d, want 200", got)
	}
}

// Frozen before any watermark arrived, the cursor stays 0 (clients keep
// the cursor they have) rather than 1, which would replay everything.
func TestCursorClock_FreezeWithoutACursorKeepsNone(t *testing.T) {
	c := newCursorClock(time.Minute, nil, nil)
	c.freeze()
	c.mark(mark(2, "b", 200))
	if got := c.cursor(); got != 0 {
		t.Fatalf("cursor frozen before any watermark = %d, want 0", got)
	}
	c.thaw()
	if got := c.cursor(); got != 200 {
		t.Fatalf("thawed cursor = %d, want 200", got)
	}
}
