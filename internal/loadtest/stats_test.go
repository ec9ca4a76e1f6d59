package loadtest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/natter-chat/natter/client"
)

func TestPercentile_NearestRank(t *testing.T) {
	ms := func(vs ...int) []time.Duration {
		out := make([]time.Duration, len(vs))
		for i, v := range vs {
			out[i] = time.Duration(v) * time.Millisecond
		}
		return out
	}
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond // 1ms..100ms
	}
	for _, tc := range []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"one sample is every percentile", ms(7), 50, 7 * time.Millisecond},
		{"one sample p99", ms(7), 99, 7 * time.Millisecond},
		{"median of an odd count is the middle", ms(1, 2, 3, 4, 5), 50, 3 * time.Millisecond},
		{"median of an even count is the lower middle", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p90 of 1..100", hundred, 90, 90 * time.Millisecond},
		{"p99 of 1..100", hundred, 99, 99 * time.Millisecond},
		{"p100 is the max", hundred, 100, 100 * time.Millisecond},
		{"p99 of ten samples is the max", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 99, 10 * time.Millisecond},
		{"p50.5 rounds the rank up", hundred, 50.5, 51 * time.Millisecond},
		{"a tiny percentile is the min", hundred, 0.001, time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := percentile(tc.sorted, tc.p); got != tc.want {
				t.Errorf("percentile(p%g) = %v, want %v", tc.p, got, tc.want)
			}
		})
	}
}

func TestSamples_SummaryOfUnsortedConcurrentAdds(t *testing.T) {
	var s Samples
	if got := s.Summary(); got != (Latency{}) {
		t.Errorf("empty Summary = %+v, want zero", got)
	}
	// 1..1000 µs, added in random order from several goroutines.
	order := rand.Perm(1000)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for _, v := range order[g*250 : (g+1)*250] {
				s.Add(time.Duration(v+1) * time.Microsecond)
			}
		})
	}
	wg.Wait()
	// The mean, 500.5µs, is rounded to whole microseconds like every field.
	want := Latency{Count: 1000, Mean: 0.501, P50: 0.5, P90: 0.9, P99: 0.99, Max: 1}
	if diff := cmp.Diff(want, s.Summary()); diff != "" {
		t.Errorf("Summary (-want +got):\n%s", diff)
	}
}

func TestErrorKind(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&client.Error{Code: "rate_limited"}, "rate_limited"},
		{fmt.Errorf("natter: ws send: %w", &client.CloseError{Code: 4008}), "closed_4008"},
		{fmt.Errorf("natter: ws send: %w", &client.CloseError{}), "closed"},
		{fmt.Errorf("natter: ws send: %w", context.DeadlineExceeded), "timeout"},
		{fmt.Errorf("natter: ws connect: dial tcp: %w", syscall.ECONNREFUSED), "conn_refused"},
		{fmt.Errorf("natter: ws connect: dial tcp: %w", syscall.EADDRNOTAVAIL), "no_ephemeral_port"},
		{fmt.Errorf("natter: ws send: %w", &client.CloseError{}), "closed"},
		{errors.New("boom"), "other"},
	} {
		if got := errorKind(tc.err); got != tc.want {
			t.Errorf("errorKind(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
