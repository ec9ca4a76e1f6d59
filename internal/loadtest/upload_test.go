package loadtest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/natter-chat/natter/internal/chattest"
	"github.com/natter-chat/natter/internal/loadtest"
)

// TestRun_Upload runs the upload scenario, small, against a real node:
// every file must be stored and counted.
func TestRun_Upload(t *testing.T) {
	n := chattest.StartNode(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	opts := loadtest.Options{Scenario: loadtest.ScenarioUpload, Addr: n.URL, Senders: 2, Uploads: 3, FileSize: 300 << 10}
	if err := loadtest.Run(ctx, opts, &out); err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var res loadtest.Result
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("last line is not a Result: %v\n%s", err, out.String())
	}
	if res.Uploads != 6 || res.UploadsTried != 6 || len(res.Errors) != 0 || res.Upload == nil || res.Upload.Count != 6 {
		t.Errorf("uploads %d of %d, errors %v, latency %+v; want 6 of 6 without errors\n%s", res.Uploads, res.UploadsTried, res.Errors, res.Upload, out.String())
	}
	if want := 6 * float64(300<<10) / 1e6 / res.ElapsedSec; res.MBPerSec < want*0.99 || res.MBPerSec > want*1.01 {
		t.Errorf("MB/s %.3f, want %.3f (6 files of 300 KiB in %.2fs)", res.MBPerSec, want, res.ElapsedSec)
	}
}

// A file size the server must refuse makes every upload fail, and the
// run says so instead of reporting a rate.
func TestRun_UploadReportsRefusals(t *testing.T) {
	n := chattest.StartNode(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	opts := loadtest.Options{Scenario: loadtest.ScenarioUpload, Addr: n.URL, Senders: 1, Uploads: 2, FileSize: 101 << 20}
	err := loadtest.Run(ctx, opts, &out)
	if err == nil || !strings.Contains(out.String(), "too_large=2") {
		t.Errorf("Run = %v, want a failure counting 2 too_large\n%s", err, out.String())
	}
}
