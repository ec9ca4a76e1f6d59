package membus

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/natter-chat/natter/internal/chat"
)

const (
	testGrace    = 5 * time.Second
	testDebounce = time.Second
	// sentinels are users above this id; drain uses them as markers.
	sentinelBase chat.UserID = 1 << 40
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// fakeClock is a step clock whose timers fire, in time order, only inside
// Advance, on the caller's goroutine.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at   time.Time
	f    func()
	done bool // fired or stopped
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		stopped := !t.done
		t.done = true
		return stopped
	}
}

// Advance moves the clock by d, firing the timers due on the way.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	for {
		var next *fakeTimer
		for _, t := range c.timers {
			if !t.done && !t.at.After(end) && (next == nil || t.at.Before(next.at)) {
				next = t
			}
		}
		if next == nil {
			break
		}
		next.done = true
		if next.at.After(c.now) {
			c.now = next.at
		}
		c.mu.Unlock()
		next.f()
		c.mu.Lock()
	}
	c.now = end
	c.timers = slices.DeleteFunc(c.timers, func(t *fakeTimer) bool { return t.done })
	c.mu.Unlock()
}

// pending returns how many timers are neither fired nor stopped.
func (c *fakeClock) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if !t.done {
			n++
		}
	}
	return n
}

// harness is a Presence on a fake clock with one recording watcher.
type harness struct {
	t        testing.TB
	p        *Presence
	clock    *fakeClock
	got      chan chat.PresenceState
	sentinel chat.UserID
}

func newHarness(t testing.TB, opts PresenceOptions) *harness {
	t.Helper()
	clock := &fakeClock{now: t0}
	if opts.Grace == 0 {
		opts.Grace = testGrace
	}
	if opts.Debounce == 0 {
		opts.Debounce = testDebounce
	}
	opts.Now, opts.AfterFunc = clock.Now, clock.AfterFunc
	h := &harness{t: t, p: NewPresence(opts), clock: clock, got: make(chan chat.PresenceState, 1<<16), sentinel: sentinelBase}
	t.Cleanup(h.p.Close)
	cancel, err := h.p.Watch(context.Background(), func(st chat.PresenceState) { h.got <- st })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cancel)
	return h
}

func (h *harness) set(user chat.UserID, conn int64, s chat.Status) {
	h.t.Helper()
	if err := h.p.Set(context.Background(), user, conn, s); err != nil {
		h.t.Fatalf("Set(%d, %d, %s): %v", user, conn, s, err)
	}
}

func (h *harness) remove(user chat.UserID, conn int64) {
	h.t.Helper()
	if err := h.p.Remove(context.Background(), user, conn); err != nil {
		h.t.Fatalf("Remove(%d, %d): %v", user, conn, err)
	}
}

func (h *harness) get(users ...chat.UserID) []chat.PresenceState {
	h.t.Helper()
	states, err := h.p.Get(context.Background(), users)
	if err != nil {
		h.t.Fatalf("Get: %v", err)
	}
	return states
}

// drain returns every announcement made so far that the watcher has not
// returned yet. It connects a fresh sentinel user, whose announcement is
// queued behind all earlier ones, and collects until it arrives.
func (h *harness) drain() []chat.PresenceState {
	h.t.Helper()
	h.sentinel++
	h.set(h.sentinel, 1, chat.StatusOnline)
	var got []chat.PresenceState
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		select {
		case st := <-h.got:
			if st.User == h.sentinel {
				return got
			}
			if st.User <= sentinelBase {
				got = append(got, st)
			}
		case <-deadline.C:
			h.t.Fatalf("sentinel announcement never arrived; got so far %v", got)
			return nil
		}
	}
}

func (h *harness) wantAnnounced(want ...chat.PresenceState) {
	h.t.Helper()
	if diff := cmp.Diff(want, h.drain()); diff != "" {
		h.t.Errorf("announcements (-want +got):\n%s", diff)
	}
}

func (h *harness) wantGet(want ...chat.PresenceState) {
	h.t.Helper()
	users := make([]chat.UserID, len(want))
	for i, st := range want {
		users[i] = st.User
	}
	if diff := cmp.Diff(want, h.get(users...)); diff != "" {
		h.t.Errorf("Get (-want +got):\n%s", diff)
	}
}

const alice, bob chat.UserID = 1, 2

func online(u chat.UserID, at time.Time) chat.PresenceState {
	return chat.PresenceState{User: u, Status: chat.StatusOnline, LastSeen: at}
}
func away(u chat.UserID, lastSeen time.Time) chat.PresenceState {
	return chat.PresenceState{User: u, Status: chat.StatusAway, LastSeen: lastSeen}
}
func offline(u chat.UserID, lastSeen time.Time) chat.PresenceState {
	return chat.PresenceState{User: u, Status: chat.StatusOffline, LastSeen: lastSeen}
}

func TestPresence_ConnectAnnouncesOnline(t *testing.T) {
	h := newHarness(t, PresenceOptions{})
	h.set(alice, 1, chat.StatusOnline)
	h.wantAnnounced(online(alice, t0))
	h.clock.Advance(time.Minute)
	h.wantGet(online(alice, t0.Add(time.Minute)), offline(bob, time.Time{}))
}

func TestPresence_ConnectAwayAnnouncesAwayNeverSeen(t *testing.T) {
	h := newHarness(t, PresenceOptions{})
	h.set(alice, 1, chat.StatusAway)
	h.wantAnnounced(away(alice, time.Time{}))
	h.wantGet(away(alice, time.Time{}))
}

func TestPresence_OneOfTwoDevicesLeavingChangesNothing(t *testing.T) {
	h := newHarness(t, PresenceOptions{})
	h.set(alice, 1, chat.StatusOnline)
	h.set(alice, 2, chat.StatusOnline)
	h.wantAnnounced(online(alice, t0))
	h.remove(alice, 1)
	h.clock.Advance(testGrace + testDebounce)
	h.wantAnnounced()
	h.wantGet(online(alice, t0.Add(testGrace+testDebounce)))
}

func TestPresence_AllDevicesAwayMakesAway(t *testing.T) {
	h := newHarness(t, PresenceOptions{})
	h.set(alice, 1, chat.StatusOnline)
	h.set(alice, 2, chat.StatusOnline)
	h.wantAnnounced(online(alice, t0))
	h.clock.Advance(2 * time.Second)
	h.set(alice, 1, chat.StatusAway)
	h.wantAnnounced() // device 2 is still online
	h.set(alice, 2, chat.StatusAway)
	h.wantAnnounced(away(alice, t0.Add(2*time.Second)))
	h.wantGet(away(alice, t0.Add(2*time.Second)))

	h.clock.Advance(2 * time.Second)
	h.set(alice, 2, chat.StatusOnline)
	h.wantAnnounced(online(alice, t0.Add(4*time.Second)))
}

func TestPresence_OnlineDeviceLeavingAwayOneMakesAway(t *testing.T) {
	h := newHarness(t, PresenceOptions{})
	h.set(alice, 1, chat.StatusOnline)
	h.set(alice, 2, chat.StatusAway)
	h.wantAnnounced(online(alice, t0))
	h.clock.Advance(2 * time.Second)
	h.remove(alice, 1)
	h.wantAnnounced(away(alice, t0.Add(2*time.Second)))
}

func TestPresence_LastDeviceLeavingMakesOfflineOnlyAfterGrace(t *testing.T) {
	h := newHarness(t, PresenceOptions{})
	h.set(alice, 1, chat.StatusOnline)
	h.wantAnnounced(online(alice, t0))
	h.clock.Advance(10 * time.Second)
	closed := t0.Add(10 * time.Second)
	h.remove(alice, 1)

	h.clock.Advance(testGrace - time.Nanosecond)
	h.wantAnnounced()
	h.wantGet(online(alice, closed.Add(testGrace-time.Nanosecond)))

	h.clock.Advance(time.Nanosecond)
	h.wantAnnounced(offline(alice, closed))
	h.wantGet(offline(alice, closed))
	if n := h.clock.pending(); n != 0 {
		t.Errorf("%d timers still pending after going offline", n)
	}
}

func TestPresence_AwayUserGoingOfflineKeepsLastSeen(t *testing.T) {
	h := newHarness(t, PresenceOptions{})
	h.set(alice, 1, chat.StatusOnline)
	h.clock.Advance(3 * time.Second)
	h.set(alice, 1, chat.StatusAway)
	h.wantAnnounced(online(alice, t0), away(alice, t0.Add(3*time.Second)))
	h.clock.Advance(time.Minute)
	h.remove(alice, 1)
	h.clock.Advance(testGrace)
	h.wantAnnounced(offline(alice, t0.Add(3*time.Second)))
}

func TestPresence_FlappingWithinGraceAnnouncesNothing(t *testing.T) {
	h := newHarness(t, PresenceOptions{})
	h.set(alice, 1, chat.StatusOnline)
	h.wantAnnounced(online(alice, t0))
	h.clock.Advance(time.Minute)
	for conn := int64(2); conn < 10; conn++ {
		h.remove(alice, conn-1)
		h.clock.Advance(testGrace - time.Millisecond)
		h.set(alice, conn, chat.StatusOnline)
	}
	h.clock.Advance(2 * testGrace)
	h.wantAnnounced()
	h.wantGet(online(alice, h.clock.Now()))
	if n := h.clock.pending(); n != 0 {
		t.Errorf("%d timers still pending after flapping", n)
	}
}

func TestPresence_ChangesWithinDebounceAnnounceLatestOnce(t *testing.T) {
	tests := []struct {
		name string
		// statuses of alice's only connection, one per 100ms after she
		// connected online at t0; "" removes it
		steps []chat.Status
		want  []chat.PresenceState // announced at the end of the window
	}{
		{
			name:  "latest away is announced once",
			steps: []chat.Status{chat.StatusAway, chat.StatusOnline, chat.StatusAway, chat.StatusOnline, chat.StatusAway},
			want:  []chat.PresenceState{away(alice, t0.Add(500*time.Millisecond))},
		},
		{
			name:  "back to the announced state announces nothing",
			steps: []chat.Status{chat.StatusAway, chat.StatusOnline, chat.StatusAway, chat.StatusOnline},
			want:  nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, PresenceOptions{})
			h.set(alice, 1, chat.StatusOnline)
			h.wantAnnounced(online(alice, t0))
			for _, s := range tt.steps {
				h.clock.Advance(100 * time.Millisecond)
				h.set(alice, 1, s)
			}
			h.wantAnnounced() // the window is not over yet
			h.clock.Advance(testDebounce)
			h.wantAnnounced(tt.want...)
		})
	}
}

func TestPresence_ChangeAfterQuietDebounceIsAnnouncedAtOnce(t *testing.T) {
	h := newHarness(t, PresenceOptions{})
	h.set(alice, 1, chat.StatusOnline)
	h.clock.Advance(testDebounce)
	h.set(alice, 1, chat.StatusAway)
	h.wantAnnounced(online(alice, t0), away(alice, t0.Add(testDebounce)))
	h.clock.Advance(testDebounce / 2)
	h.set(alice, 1, chat.StatusOnline)
	h.wantAnnounced()
	h.clock.Advance(testDebounce / 2)
	h.wantAnnounced(online(alice, t0.Add(2*testDebounce)))
}

func TestPresence_ReconnectSoonAfterOfflineIsDebounced(t *testing.T) {
	h := newHarness(t, PresenceOptions{})
	h.set(alice, 1, chat.StatusOnline)
	h.remove(alice, 1)
	h.clock.Advance(testGrace)
	h.wantAnnounced(online(alice, t0), offline(alice, t0))
	h.set(alice, 2, chat.StatusOnline) // in the same Debounce window as offline
	h.remove(alice, 2)
	h.set(alice, 3, chat.StatusOnline)
	h.wantAnnounced()
	h.clock.Advance(testDebounce)
	h.wantAnnounced(online(alice, t0.Add(testGrace+testDebounce)))
}

func TestPresence_GetUnknownUsersAreOffline(t *testing.T) {
	h := newHarness(t, PresenceOptions{})
	h.set(bob, 1, chat.StatusAway)
	tests := []struct {
		name  string
		users []chat.UserID
		want  []chat.PresenceState
	}{
		{"none asked", nil, []chat.PresenceState{}},
		{"unknown", []chat.UserID{alice}, []chat.PresenceState{offline(alice, time.Time{})}},
		{"order kept and repeats answered", []chat.UserID{alice, bob, 99, bob}, []chat.PresenceState{
			offline(alice, time.Time{}), away(bob, time.Time{}), offline(99, time.Time{}), away(bob, time.Time{}),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, h.get(tt.users...)); diff != "" {
				t.Errorf("Get (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPresence_SetRejectsBadStatus(t *testing.T) {
	h := newHarness(t, PresenceOptions{})
	for _, s := range []chat.Status{chat.StatusOffline, "", "busy"} {
		if err := h.p.Set(context.Background(), alice, 1, s); chat.ErrorCode(err) != chat.CodeInvalidArgument {
			t.Errorf("Set(%q) = %v, want %s", s, err, chat.CodeInvalidArgument)
		}
	}
	h.wantGet(offline(alice, time.Time{}))
}

func TestPresence_RemoveUnknownConnectionDoesNothing(t *testing.T) {
	h := newHarness(t, PresenceOptions{})
	h.remove(alice, 1)
	h.set(alice, 1, chat.StatusOnline)
	h.remove(alice, 2)
	h.clock.Advance(testGrace)
	h.wantAnnounced(online(alice, t0))
	h.wantGet(online(alice, t0.Add(testGrace)))
}

func TestPresence_MemoryIsBoundedByLiveAndRememberedUsers(t *testing.T) {
	const remembered = 3
	h := newHarness(t, PresenceOptions{MaxLastSeen: remembered})
	for u := chat.UserID(1); u <= 10; u++ {
		h.set(u, 1, chat.StatusOnline)
		h.clock.Advance(time.Second)
		h.remove(u, 1)
	}
	h.clock.Advance(testGrace + testDebounce)
	h.drain()
	h.p.mu.Lock()
	live, kept := len(h.p.users), len(h.p.offline)
	h.p.mu.Unlock()
	if live != int(h.sentinel-sentinelBase) || kept != remembered {
		t.Errorf("live users = %d, remembered = %d; want %d (the sentinels) and %d", live, kept, h.sentinel-sentinelBase, remembered)
	}
	// The last to go offline are remembered; the others are forgotten.
	h.wantGet(
		offline(1, time.Time{}),
		offline(7, time.Time{}),
		offline(8, t0.Add(8*time.Second)),
		offline(10, t0.Add(10*time.Second)),
	)
}

func TestPresence_SlowWatcherSeesLatestStatePerUser(t *testing.T) {
	clock := &fakeClock{now: t0}
	p := NewPresence(PresenceOptions{QueueSize: 4, Now: clock.Now, AfterFunc: clock.AfterFunc})
	t.Cleanup(p.Close)
	release := make(chan struct{})
	got := make(chan chat.PresenceState, 100)
	cancel, err := p.Watch(context.Background(), func(st chat.PresenceState) {
		got <- st
		if st.User == alice && st.Status == chat.StatusOnline && st.LastSeen.Equal(t0) {
			<-release // stuck on the first announcement
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cancel)
	ctx := context.Background()
	_ = p.Set(ctx, alice, 1, chat.StatusOnline)
	if st := <-got; st != online(alice, t0) {
		t.Fatalf("first announcement = %v", st)
	}
	// The handler is stuck: these must neither block nor be lost.
	for i := range 100 {
		clock.Advance(time.Second)
		s := chat.StatusAway
		if i%2 == 1 {
			s = chat.StatusOnline
		}
		_ = p.Set(ctx, alice, 1, s)
		_ = p.Set(ctx, bob, 1, s)
	}
	_ = p.Set(ctx, 3, 1, chat.StatusAway) // a marker, queued last
	close(release)
	var rest []chat.PresenceState
	for st := range got {
		rest = append(rest, st)
		if st.User == 3 {
			break
		}
	}
	last := t0.Add(100 * time.Second)
	want := []chat.PresenceState{
		// the queue, in full
		away(alice, t0.Add(time.Second)), away(bob, time.Time{}),
		online(alice, t0.Add(2*time.Second)), online(bob, t0.Add(2*time.Second)),
		// then the latest of each user
		online(alice, last), online(bob, last), away(3, time.Time{}),
	}
	if diff := cmp.Diff(want, rest); diff != "" {
		t.Errorf("after release (-want +got):\n%s", diff)
	}
}

func TestPresence_ConcurrentUseSettlesOffline(t *testing.T) {
	h := newHarness(t, PresenceOptions{})
	const users, conns, rounds = 16, 4, 50
	ctx := context.Background()
	var wg sync.WaitGroup
	for u := chat.UserID(1); u <= users; u++ {
		for c := int64(1); c <= conns; c++ {
			wg.Go(func() {
				for r := range rounds {
					s := chat.StatusOnline
					if r%3 == 0 {
						s = chat.StatusAway
					}
					if err := h.p.Set(ctx, u, c, s); err != nil {
						t.Error(err)
					}
					if _, err := h.p.Get(ctx, []chat.UserID{u, u%users + 1}); err != nil {
						t.Error(err)
					}
					if err := h.p.Remove(ctx, u, c); err != nil {
						t.Error(err)
					}
				}
			})
		}
	}
	wg.Go(func() {
		for range 20 {
			h.clock.Advance(testDebounce / 4) // timers fire while the others work
		}
	})
	wg.Wait()
	h.clock.Advance(testGrace + testDebounce)
	latest := make(map[chat.UserID]chat.Status)
	for _, st := range h.drain() {
		latest[st.User] = st.Status
	}
	for u := chat.UserID(1); u <= users; u++ {
		if latest[u] != chat.StatusOffline {
			t.Errorf("user %d: last announced %q, want offline", u, latest[u])
		}
		if st := h.get(u)[0]; st.Status != chat.StatusOffline {
			t.Errorf("user %d: Get says %q, want offline", u, st.Status)
		}
	}
}

// waitGoroutines polls until at most n goroutines run.
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines still running, want at most %d:\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		runtime.Gosched()
	}
}

func TestPresence_CancelStopsWatcher(t *testing.T) {
	clock := &fakeClock{now: t0}
	p := NewPresence(PresenceOptions{Now: clock.Now, AfterFunc: clock.AfterFunc})
	defer p.Close()
	base := runtime.NumGoroutine()
	var mu sync.Mutex
	calls := 0
	var cancels []func()
	for range 10 {
		cancel, err := p.Watch(context.Background(), func(chat.PresenceState) { mu.Lock(); calls++; mu.Unlock() })
		if err != nil {
			t.Fatal(err)
		}
		cancels = append(cancels, cancel)
	}
	if n := runtime.NumGoroutine(); n < base+10 {
		t.Fatalf("%d goroutines after 10 watches, want at least %d", n, base+10)
	}
	for _, cancel := range cancels {
		cancel()
		cancel() // idempotent
	}
	_ = p.Set(context.Background(), alice, 1, chat.StatusOnline)
	waitGoroutines(t, base)
	mu.Lock()
	defer mu.Unlock()
	if calls != 0 {
		t.Errorf("handlers called %d times after cancel returned", calls)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.watchers) != 0 {
		t.Errorf("%d watchers still registered", len(p.watchers))
	}
}

func TestPresence_ContextDoneStopsWatcher(t *testing.T) {
	p := NewPresence(PresenceOptions{})
	defer p.Close()
	base := runtime.NumGoroutine()
	ctx, stop := context.WithCancel(context.Background())
	cancel, err := p.Watch(ctx, func(chat.PresenceState) {})
	if err != nil {
		t.Fatal(err)
	}
	stop()
	waitGoroutines(t, base)
	cancel() // returns at once: the goroutine is gone
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.watchers) != 0 {
		t.Errorf("%d watchers still registered after ctx was done", len(p.watchers))
	}
}

func TestPresence_CloseStopsTimersAndWatchers(t *testing.T) {
	base := runtime.NumGoroutine()
	p := NewPresence(PresenceOptions{Grace: time.Hour, Debounce: time.Hour}) // real timers
	ctx := context.Background()
	for i := range 10 {
		if _, err := p.Watch(ctx, func(chat.PresenceState) {}); err != nil {
			t.Fatal(err)
		}
		u := chat.UserID(i + 1)
		_ = p.Set(ctx, u, 1, chat.StatusOnline)
		_ = p.Set(ctx, u, 1, chat.StatusAway) // pending Debounce timer
		_ = p.Remove(ctx, u, 1)               // pending Grace timer
	}
	p.Close()
	p.Close()
	waitGoroutines(t, base)
	for name, err := range map[string]error{
		"Set":    p.Set(ctx, alice, 1, chat.StatusOnline),
		"Remove": p.Remove(ctx, alice, 1),
		"Get":    func() error { _, err := p.Get(ctx, []chat.UserID{alice}); return err }(),
		"Watch":  func() error { _, err := p.Watch(ctx, func(chat.PresenceState) {}); return err }(),
	} {
		if chat.ErrorCode(err) != chat.CodeUnavailable || !errors.Is(err, errPresenceClosed) {
			t.Errorf("%s after Close = %v, want unavailable", name, err)
		}
	}
}

func TestPresenceOptions_Defaults(t *testing.T) {
	p := NewPresence(PresenceOptions{})
	defer p.Close()
	if p.grace != 5*time.Second || p.debounce != time.Second || p.maxLastSeen != 100_000 {
		t.Errorf("Grace, Debounce, MaxLastSeen = %v, %v, %d; want 5s, 1s, 100000", p.grace, p.debounce, p.maxLastSeen)
	}
}
