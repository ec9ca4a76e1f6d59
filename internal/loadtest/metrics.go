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
)

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

// settledRSS polls the server's resident memory until two consecutive
// readings, interval apart, differ by less than 1%, or until tries
// readings were taken, and returns the last reading with the goroutine
// count seen with it.
func settledRSS(ctx context.Context, hc *http.Client, base string, tries int, interval time.Duration) (rss, goroutines float64, err error) {
	prev := -1.0
	for i := range tries {
		if i > 0 {
			select {
			case <-time.After(interval):
			case <-ctx.Done():
				return rss, goroutines, ctx.Err()
			}
		}
		m, err := scrape(ctx, hc, base, metricRSS, metricGoroutines)
		if err != nil {
			return 0, 0, err
		}
		v, ok := m[metricRSS]
		if !ok {
			return 0, 0, fmt.Errorf("GET /metrics has no %s gauge", metricRSS)
		}
		rss, goroutines = v, m[metricGoroutines]
		if prev > 0 && abs(rss-prev) < prev/100 {
			break
		}
		prev = rss
	}
	return rss, goroutines, nil
}

func abs(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}
