package loadtest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The gauges the idle scenario reads from the server's /metrics.
const (
	metricRSS        = "process_resident_memory_bytes"
	metricGoroutines = "go_goroutines"
	metricHeapInuse  = "go_memstats_heap_inuse_bytes"
	metricStackInuse = "go_memstats_stack_inuse_bytes"
)

// memory is one reading of the server's memory gauges. Fields the server
// does not export are zero; RSS is always present.
type memory struct {
	RSS        float64 // resident set size, bytes
	Goroutines float64
	HeapStack  float64 // Go heap and goroutine stacks in use, bytes
}

// scrape fetches base+"/metrics" and returns the unlabelled samples of the
// named metrics that it found.
func scrape(ctx context.Context, hc *http.Client, base string, names ...string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape metrics: GET /metrics answered %s", resp.Status)
	}
	return parseMetrics(io.LimitReader(resp.Body, 16<<20), names...)
}

// parseMetrics reads the Prometheus text exposition format and returns the
// value of each named metric that appears without labels.
func parseMetrics(r io.Reader, names ...string) (map[string]float64, error) {
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	out := make(map[string]float64)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, ok := strings.Cut(line, " ")
		if !ok || !want[name] {
			continue
		}
		fields := strings.Fields(rest) // value [timestamp]
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("metric %s: bad value %q", name, fields[0])
		}
		out[name] = v
	}
	return out, sc.Err()
}

// settledMemory polls the server's memory until two consecutive RSS
// readings, interval apart, differ by less than 1%, or until tries
// readings were taken, and returns the last reading.
func settledMemory(ctx context.Context, hc *http.Client, base string, tries int, interval time.Duration) (memory, error) {
	var last memory
	for i := range tries {
		if i > 0 {
			select {
			case <-time.After(interval):
			case <-ctx.Done():
				return last, ctx.Err()
			}
		}
		m, err := scrape(ctx, hc, base, metricRSS, metricGoroutines, metricHeapInuse, metricStackInuse)
		if err != nil {
			return memory{}, err
		}
		rss, ok := m[metricRSS]
		if !ok {
			return memory{}, fmt.Errorf("GET /metrics has no %s gauge", metricRSS)
		}
		prev := last.RSS
		last = memory{RSS: rss, Goroutines: m[metricGoroutines], HeapStack: m[metricHeapInuse] + m[metricStackInuse]}
		if i > 0 && abs(rss-prev) < prev/100 {
			break
		}
	}
	return last, nil
}

func abs(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}
