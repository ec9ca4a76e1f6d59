package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/natter-chat/natter/client"
)

// Samples records durations. It keeps every sample, so percentiles are
// exact; a load run records at most a few million. Safe for concurrent use.
type Samples struct {
	mu sync.Mutex
	d  []time.Duration // guarded by mu
}

// Add records one sample.
func (s *Samples) Add(d time.Duration) {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
}

// Summary returns the count, mean and percentiles of the samples so far.
func (s *Samples) Summary() Latency {
	s.mu.Lock()
	d := slices.Clone(s.d)
	s.mu.Unlock()
	return summarize(d)
}

// Latency summarizes samples in milliseconds. Percentiles use the nearest
// rank: P99 is the smallest sample that at least 99% of the samples do not
// exceed.
type Latency struct {
	Count int     `json:"count"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

func summarize(d []time.Duration) Latency {
	if len(d) == 0 {
		return Latency{}
	}
	slices.Sort(d)
	var sum time.Duration
	for _, v := range d {
		sum += v
	}
	return Latency{
		Count: len(d),
		Mean:  ms(sum / time.Duration(len(d))),
		P50:   ms(percentile(d, 50)),
		P90:   ms(percentile(d, 90)),
		P99:   ms(percentile(d, 99)),
		Max:   ms(d[len(d)-1]),
	}
}

// percentile returns the nearest-rank p-th percentile (0 < p <= 100) of
// sorted, which must not be empty: the sample at rank ceil(p/100 * n).
func percentile(sorted []time.Duration, p float64) time.Duration {
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

func (l Latency) String() string {
	if l.Count == 0 {
		return "no samples"
	}
	return fmt.Sprintf("p50 %s  p90 %s  p99 %s  max %s  mean %s  (n=%d)",
		fmtMS(l.P50), fmtMS(l.P90), fmtMS(l.P99), fmtMS(l.Max), fmtMS(l.Mean), l.Count)
}

func fmtMS(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.2fs", v/1000)
	case v >= 10:
		return fmt.Sprintf("%.1fms", v)
	default:
		return fmt.Sprintf("%.2fms", v)
	}
}

// Tally counts occurrences by name (error codes, close codes). Safe for
// concurrent use.
type Tally struct {
	mu sync.Mutex
	m  map[string]int // guarded by mu
}

// Add counts one occurrence of name.
func (t *Tally) Add(name string) { t.AddN(name, 1) }

// AddN counts n occurrences of name.
func (t *Tally) AddN(name string, n int) {
	t.mu.Lock()
	if t.m == nil {
		t.m = make(map[string]int)
	}
	t.m[name] += n
	t.mu.Unlock()
}

// Map returns a copy of the counts; nil when there are none.
func (t *Tally) Map() map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.m) == 0 {
		return nil
	}
	out := make(map[string]int, len(t.m))
	for k, v := range t.m {
		out[k] = v
	}
	return out
}

// Total returns the sum of the counts.
func (t *Tally) Total() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, v := range t.m {
		n += v
	}
	return n
}

func formatTally(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, " ")
}

// errorKind names the cause of a failed request for the report: the
// server's error code, "closed_<code>" for a connection the server closed,
// a name for common network failures, or "other".
func errorKind(err error) string {
	if code := client.ErrorCode(err); code != "" {
		return code
	}
	var ce *client.CloseError
	var ne net.Error
	switch {
	case errors.As(err, &ce) && ce.Code != 0:
		return fmt.Sprintf("closed_%d", ce.Code)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "no_ephemeral_port" // more LocalAddrs help
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return "too_many_open_files"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "conn_refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "conn_reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, client.ErrClosed):
		return "closed"
	}
	return "other"
}
