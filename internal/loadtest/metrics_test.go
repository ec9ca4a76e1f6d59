package loadtest

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseMetrics(t *testing.T) {
	text := `# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 5.2539392e+07
go_goroutines 123
go_goroutines_total{kind="x"} 9
natter_connections{node="a"} 10
process_resident_memory_bytes_other 1
`
	got, err := parseMetrics(strings.NewReader(text), metricRSS, metricGoroutines, "natter_connections")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{metricRSS: 52539392, metricGoroutines: 123}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if _, err := parseMetrics(strings.NewReader("go_goroutines lots\n"), metricGoroutines); err == nil {
		t.Error("a non-numeric value was accepted")
	}
}
