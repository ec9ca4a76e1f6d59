package auth_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/natter-chat/natter/internal/auth"
)

// attempt is one login attempt that fails: it reports whether it was
// allowed and, if so, records the failure.
func attempt(th *auth.Throttle, username, addr string) time.Duration {
	wait := th.Check(username, addr)
	if wait == 0 {
		th.Fail(username, addr)
	}
	return wait
}

func TestThrottle_delaysGrowAfterFreeFailures(t *testing.T) {
	clk := &clock{t: t0}
	th := auth.NewThrottle(auth.ThrottleOptions{Now: clk.Now, UserFree: 5, AddrFree: 1000, MaxDelay: 10 * time.Second, Window: time.Hour})

	for i := range 5 {
		if wait := attempt(th, "alice", "192.0.2.1"); wait != 0 {
			t.Fatalf("free attempt %d: wait %v, want 0", i+1, wait)
		}
	}
	var delays []time.Duration
	for range 6 {
		wait := th.Check("alice", "192.0.2.1")
		delays = append(delays, wait)
		clk.Advance(wait - time.Millisecond)
		if got := th.Check("alice", "192.0.2.1"); got != time.Millisecond {
			t.Fatalf("1ms before the delay ends: wait %v, want 1ms", got)
		}
		clk.Advance(time.Millisecond)
		if got := attempt(th, "alice", "192.0.2.1"); got != 0 {
			t.Fatalf("when the delay ends: wait %v, want 0", got)
		}
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	if diff := cmp.Diff(want, delays); diff != "" {
		t.Errorf("delays (-want +got):\n%s", diff)
	}
}

func TestThrottle_refusedChecksDoNotExtendTheDelay(t *testing.T) {
	clk := &clock{t: t0}
	th := auth.NewThrottle(auth.ThrottleOptions{Now: clk.Now, UserFree: 1})
	attempt(th, "alice", "192.0.2.1")
	for range 9 {
		clk.Advance(100 * time.Millisecond)
		if wait := th.Check("alice", "192.0.2.1"); wait == 0 {
			t.Fatal("allowed before the delay ended")
		}
	}
	clk.Advance(100 * time.Millisecond)
	if wait := th.Check("alice", "192.0.2.1"); wait != 0 {
		t.Errorf("1s after the failure, with refused checks in between: wait %v, want 0", wait)
	}
}

func TestThrottle_failuresExpireAfterWindow(t *testing.T) {
	clk := &clock{t: t0}
	th := auth.NewThrottle(auth.ThrottleOptions{Now: clk.Now, UserFree: 3, Window: 10 * time.Minute, MaxDelay: time.Hour})
	for range 3 {
		attempt(th, "alice", "192.0.2.1")
	}
	if wait := th.Check("alice", "192.0.2.1"); wait == 0 {
		t.Fatal("no delay after the free failures")
	}
	clk.Advance(10 * time.Minute)
	for i := range 3 {
		if wait := attempt(th, "alice", "192.0.2.1"); wait != 0 {
			t.Fatalf("attempt %d after the window: wait %v, want 0 (failures forgotten)", i+1, wait)
		}
	}
}

func TestThrottle_delayNeverExceedsMaxDelay(t *testing.T) {
	clk := &clock{t: t0}
	th := auth.NewThrottle(auth.ThrottleOptions{Now: clk.Now, UserFree: 1, AddrFree: 1 << 20, Window: 24 * time.Hour, MaxDelay: time.Minute})
	for range 200 {
		th.Fail("alice", "192.0.2.1") // reported without Check: still counted
	}
	if wait := th.Check("alice", "192.0.2.1"); wait != time.Minute {
		t.Errorf("after 200 failures: wait %v, want MaxDelay (1m)", wait)
	}
}

func TestThrottle_successResetsUsernameOnly(t *testing.T) {
	clk := &clock{t: t0}
	th := auth.NewThrottle(auth.ThrottleOptions{Now: clk.Now, UserFree: 3, AddrFree: 4})

	// An attacker at 198.51.100.7 makes alice wait.
	for range 3 {
		attempt(th, "alice", "198.51.100.7")
	}
	if wait := th.Check("alice", "203.0.113.5"); wait != time.Second {
		t.Fatalf("alice from her own address: wait %v, want 1s", wait)
	}
	// After the delay the real alice gets in, which resets her count.
	clk.Advance(time.Second)
	if wait := th.Check("alice", "203.0.113.5"); wait != 0 {
		t.Fatalf("alice after the delay: wait %v, want 0", wait)
	}
	th.Succeed("alice", "203.0.113.5")
	for i := range 3 {
		if wait := attempt(th, "alice", "192.0.2.1"); wait != 0 {
			t.Fatalf("attempt %d after a success: wait %v, want 0", i+1, wait)
		}
	}

	// The attacker's address keeps its 3 failures even after it logs
	// into an account of its own.
	if wait := th.Check("mallory", "198.51.100.7"); wait != 0 {
		t.Fatalf("mallory: wait %v, want 0", wait)
	}
	th.Succeed("mallory", "198.51.100.7")
	attempt(th, "bob", "198.51.100.7") // the 4th failure of the address
	if wait := th.Check("carol", "198.51.100.7"); wait != time.Second {
		t.Errorf("the attacker's address after a success and one more failure: wait %v, want 1s", wait)
	}
}

func TestThrottle_addressLimitSpansUsernames(t *testing.T) {
	clk := &clock{t: t0}
	th := auth.NewThrottle(auth.ThrottleOptions{Now: clk.Now}) // defaults: 5 per user, 20 per address
	for i := range 20 {
		if wait := attempt(th, fmt.Sprintf("user%d", i), "192.0.2.1"); wait != 0 {
			t.Fatalf("attempt %d: wait %v, want 0", i+1, wait)
		}
	}
	if wait := th.Check("user20", "192.0.2.1"); wait != time.Second {
		t.Errorf("21st username from one address: wait %v, want 1s", wait)
	}
	if wait := th.Check("user20", "192.0.2.2"); wait != 0 {
		t.Errorf("from another address: wait %v, want 0", wait)
	}
}

func TestThrottle_keys(t *testing.T) {
	tests := []struct {
		name           string
		failUser       string
		failAddr       string
		checkUser      string
		checkAddr      string
		sameUser, same bool // whether the checked username / address share the failures
	}{
		{"username in other case", "Alice", "192.0.2.1", "aLICE", "192.0.2.9", true, false},
		{"other username", "alice", "192.0.2.1", "bob", "192.0.2.9", false, false},
		{"IPv4 with a port", "u1", "192.0.2.1:5555", "u2", "192.0.2.1", false, true},
		{"IPv4-mapped IPv6", "u1", "::ffff:192.0.2.1", "u2", "192.0.2.1", false, true},
		{"IPv6 in the same /64", "u1", "2001:db8:1:2::1", "u2", "[2001:db8:1:2:ffff::9]:443", false, true},
		{"IPv6 in another /64", "u1", "2001:db8:1:2::1", "u2", "2001:db8:1:3::1", false, false},
		{"long usernames are told apart", longName('a'), "192.0.2.1", longName('b'), "192.0.2.9", false, false},
		{"long usernames are matched", longName('a'), "192.0.2.1", longName('a'), "192.0.2.9", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &clock{t: t0}
			th := auth.NewThrottle(auth.ThrottleOptions{Now: clk.Now, UserFree: 1, AddrFree: 1})
			attempt(th, tt.failUser, tt.failAddr)
			delayed := th.Check(tt.checkUser, tt.checkAddr) > 0
			if want := tt.sameUser || tt.same; delayed != want {
				t.Errorf("Check(%q, %q) after a failure of (%q, %q): delayed %v, want %v",
					tt.checkUser, tt.checkAddr, tt.failUser, tt.failAddr, delayed, want)
			}
		})
	}
}

func longName(c byte) string {
	b := make([]byte, 1000)
	for i := range b {
		b[i] = 'x'
	}
	b[len(b)-1] = c
	return string(b)
}

func TestThrottle_emptyKeysAreNotCounted(t *testing.T) {
	th := auth.NewThrottle(auth.ThrottleOptions{UserFree: 1, AddrFree: 1})
	for range 10 {
		th.Fail("", "")
	}
	if wait := th.Check("", ""); wait != 0 {
		t.Errorf("wait %v, want 0", wait)
	}
}

func TestThrottle_concurrentAttemptsCannotSlipThrough(t *testing.T) {
	clk := &clock{t: t0}
	th := auth.NewThrottle(auth.ThrottleOptions{Now: clk.Now, UserFree: 5, AddrFree: 1000})
	var mu sync.Mutex
	allowed := 0
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			if th.Check("alice", fmt.Sprintf("192.0.2.%d", i)) == 0 {
				mu.Lock()
				allowed++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if allowed != 5 {
		t.Errorf("%d of 50 simultaneous attempts allowed, want 5 (UserFree)", allowed)
	}
}

func TestThrottle_abandonedAttemptCountsAsFailure(t *testing.T) {
	clk := &clock{t: t0}
	th := auth.NewThrottle(auth.ThrottleOptions{Now: clk.Now, UserFree: 2})
	th.Check("alice", "192.0.2.1")
	th.Check("alice", "192.0.2.1")
	if wait := th.Check("alice", "192.0.2.1"); wait != time.Second {
		t.Errorf("after two attempts never reported: wait %v, want 1s", wait)
	}
}

func TestThrottle_successesDoNotThrottleASharedAddress(t *testing.T) {
	clk := &clock{t: t0}
	th := auth.NewThrottle(auth.ThrottleOptions{Now: clk.Now, AddrFree: 3})
	for i := range 100 {
		user := fmt.Sprintf("user%d", i)
		if wait := th.Check(user, "192.0.2.1"); wait != 0 {
			t.Fatalf("login %d behind one address: wait %v, want 0", i+1, wait)
		}
		th.Succeed(user, "192.0.2.1")
	}
}

func TestThrottle_memoryIsBounded(t *testing.T) {
	clk := &clock{t: t0}
	th := auth.NewThrottle(auth.ThrottleOptions{Now: clk.Now, UserFree: 1, AddrFree: 1 << 20, MaxEntries: 100})
	attempt(th, "victim", "192.0.2.1")
	if wait := th.Check("victim", "192.0.2.1"); wait == 0 {
		t.Fatal("no delay after the free failure")
	}
	for i := range 1000 {
		th.Fail(fmt.Sprintf("user%d", i), "192.0.2.1")
	}
	if got := th.Len(); got > 100 {
		t.Errorf("Len = %d, want at most MaxEntries (100)", got)
	}
	if wait := th.Check("victim", "192.0.2.1"); wait != 0 {
		t.Errorf("the oldest username was not evicted: wait %v", wait)
	}
}
