package app_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/internal/app"
	"github.com/natter-chat/natter/internal/chattest"
)

// TestRoles_WorkerMakesTheAPINodesThumbnails runs an api node, which
// serves clients and only enqueues jobs, and a worker node, which does the
// jobs and serves no clients: an upload on the api node gets its
// thumbnail from the worker.
func TestRoles_WorkerMakesTheAPINodesThumbnails(t *testing.T) {
	eachNATS(t, func(t *testing.T, c *cluster) {
		deleteJobStreams(t, c)
		blobs := t.TempDir()
		api := c.start(t, func(cfg *app.Config) { cfg.Role, cfg.Attachments.Dir = app.RoleAPI, blobs })
		worker := c.start(t, func(cfg *app.Config) { cfg.Role, cfg.Attachments.Dir = app.RoleWorker, blobs })

		alice, _ := api.user(t, "alice")
		g, err := alice.CreateGroup(ctxT(t), "files", nil)
		if err != nil {
			t.Fatal(err)
		}
		u := mustUpload(t, alice, g.ID, "chart.png", chattest.PNGWithMetadata(t, 500, 100))
		if len(thumbnailOf(t, alice, u.ID)) == 0 {
			t.Fatal("empty thumbnail")
		}
		if n := jobsDone(t, worker.URL); n != "1" {
			t.Errorf("the worker did %s thumbnail jobs, want 1", n)
		}
		if n := jobsDone(t, api.URL); n != "" {
			t.Errorf("the api node did %s thumbnail jobs, want none", n)
		}

		t.Run("the worker serves health, readiness and metrics only", func(t *testing.T) {
			for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/metrics": 200, "/v1/conversations": 404, "/": 404} {
				res, body := get(t, worker.URL+path, "")
				if res.StatusCode != want {
					t.Errorf("GET %s on the worker: %d, want %d", path, res.StatusCode, want)
				}
				if want == 404 && !strings.Contains(string(body), `"code":"not_found"`) {
					t.Errorf("GET %s on the worker: body %s, want a not_found error", path, body)
				}
			}
		})
	})
}

// jobsDone reads natter_jobs_total{kind="thumbnail",result="done"} from
// a node's /metrics ("" when absent).
func jobsDone(t *testing.T, url string) string {
	t.Helper()
	_, body := get(t, url+"/metrics", "")
	for line := range strings.Lines(string(body)) {
		if strings.HasPrefix(line, `natter_jobs_total{kind="thumbnail",result="done"} `) {
			return strings.TrimSpace(strings.Fields(line)[1])
		}
	}
	return ""
}

// deleteJobStreams removes the cluster's job streams when t ends.
func deleteJobStreams(t *testing.T, c *cluster) {
	t.Cleanup(func() {
		nc, err := nats.Connect(c.natsURL)
		if err != nil {
			return
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = js.DeleteStream(ctx, c.name+"_jobs")
		_ = js.DeleteStream(ctx, c.name+"_dlq")
	})
}

func TestRoles_NeedClusterModeAndAKnownName(t *testing.T) {
	for role, want := range map[string]string{"api": "needs cluster mode", "worker": "needs cluster mode", "everything": "want all, api or worker"} {
		_, err := app.New(t.Context(), app.Config{DataDir: t.TempDir(), Role: role})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("role %s in embedded mode: %v, want an error saying %q", role, err, want)
		}
	}
	a, err := app.New(t.Context(), app.Config{DataDir: t.TempDir(), Role: app.RoleAll, Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatalf("role all in embedded mode: %v", err)
	}
	if err := a.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := a.Run(ctx); err != nil {
		t.Fatal(err)
	}
}
