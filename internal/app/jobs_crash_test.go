package app_test

import (
	"context"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/natter-chat/natter/internal/app"
	"github.com/natter-chat/natter/internal/chattest"
)

// TestJobsCrash_AWorkerCutOffMidJobIsReplacedAndOneThumbnailResults
// holds a thumbnail job on a first worker, then cuts that worker off from
// NATS, as if it had died mid-job: it can neither finish nor report
// progress. After the ack wait a second worker redoes the job, and
// exactly one thumbnail results.
func TestJobsCrash_AWorkerCutOffMidJobIsReplacedAndOneThumbnailResults(t *testing.T) {
	eachNATS(t, func(t *testing.T, c *cluster) {
		deleteJobStreams(t, c)
		blobs := t.TempDir()
		shared := func(role string) func(*app.Config) {
			return func(cfg *app.Config) {
				cfg.Role, cfg.Attachments.Dir, cfg.JobsAckWait = role, blobs, 2*time.Second
			}
		}
		api := c.start(t, shared(app.RoleAPI))

		held := make(chan string, 1)
		stall := func(ctx context.Context, kind string, payload []byte) error {
			select {
			case held <- string(payload):
			default:
			}
			<-ctx.Done() // never lets the job through: this worker "dies" holding it
			return ctx.Err()
		}
		proxy := startTCPProxy(t, c.natsHostPort(t))
		first := c.start(t, shared(app.RoleWorker), busVia(proxy), func(cfg *app.Config) { cfg.JobGate = stall })

		alice, _ := api.user(t, "alice")
		g, err := alice.CreateGroup(ctxT(t), "files", nil)
		if err != nil {
			t.Fatal(err)
		}
		u := mustUpload(t, alice, g.ID, "chart.png", chattest.PNGWithMetadata(t, 500, 100))
		select {
		case id := <-held:
			if id != u.ID {
				t.Fatalf("the first worker holds a job for %s, want %s", id, u.ID)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("the first worker did not take the thumbnail job within 20s")
		}
		proxy.Cut() // the first worker is gone mid-job: no ack, no progress
		second := c.start(t, shared(app.RoleWorker))

		// The first worker's gate never returns while it runs, and while
		// connected it reports progress every third of the ack wait: the
		// thumbnail can only come from a redelivery to the second worker.
		if len(thumbnailOf(t, alice, u.ID)) == 0 {
			t.Fatal("empty thumbnail")
		}
		eventually(t, 10*time.Second, "the second worker to count its job", func() bool { return jobsDone(t, second.URL) == "1" })
		if n := jobsDone(t, second.URL); n != "1" {
			t.Errorf("the second worker did %s thumbnail jobs, want 1", n)
		}
		var thumbs []string
		err = filepath.WalkDir(filepath.Join(blobs, "objects"), func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(d.Name(), "~thumbnail") {
				thumbs = append(thumbs, d.Name())
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(thumbs) != 1 || thumbs[0] != "att~"+u.ID+"~thumbnail" {
			t.Fatalf("thumbnail blobs %v, want exactly the one of %s", thumbs, u.ID)
		}
		first.stop() // now stopped for good: it must not make a second thumbnail on its way out
		if n := jobsDone(t, second.URL); n != "1" {
			t.Errorf("after the first worker stopped, the second did %s thumbnail jobs, want 1", n)
		}
	})
}
