package app_test

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/internal/app"
	"github.com/natter-chat/natter/internal/chattest"
	"github.com/natter-chat/natter/internal/natstest"
)

// In cluster mode a shared bucket turns attachments on: an upload made
// on one node downloads from another, with no shared directory.
func TestClusterAttachmentsS3_AnyNodeServesAnUpload(t *testing.T) {
	c := newCluster(t, postgresURL(t), natstest.Start(t))
	fake := chattest.StartS3(t, "media")
	withS3 := func(cfg *app.Config) { s3Creds(cfg); cfg.Attachments.Store = fake.URL("media", "") }
	n1, n2 := c.start(t, withS3), c.start(t, withS3)
	alice, _ := n1.user(t, "alice")
	bobOn1, bobID := n1.user(t, "bob")
	ctx := ctxT(t)
	g, err := alice.CreateGroup(ctx, "shared", []string{bobID})
	if err != nil {
		t.Fatal(err)
	}
	data := pdf(3000)
	u := mustUpload(t, alice, g.ID, "doc.pdf", data)
	if _, err := alice.SendAttachments(ctx, g.ID, "c-1", "", []string{u.ID}); err != nil {
		t.Fatal(err)
	}
	bob := client.New(n2.URL, client.Options{})
	bob.SetTokens(bobOn1.Tokens())
	if got, _ := download(t, bob, u.ID, false); !bytes.Equal(got, data) {
		t.Fatalf("node 2 served %d bytes, want %d", len(got), len(data))
	}

	plain := c.start(t) // no bucket, no shared directory: attachments are off
	res, _ := get(t, plain.URL+"/v1/attachments/"+u.ID, bobOn1.Tokens().AccessToken)
	if res.StatusCode != http.StatusNotFound {
		t.Fatalf("a node without shared storage answered %d, want 404", res.StatusCode)
	}
}
