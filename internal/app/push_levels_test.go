package app_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/natter-chat/natter/client"
)

// TestPush_NotificationLevels: GET /v1/me/notification-levels gives each
// user, in one request, their own levels other than "all" in the
// conversations they are in now, and nothing of a conversation they were
// removed from.
func TestPush_NotificationLevels(t *testing.T) {
	n := startNode(t, "")
	alice, aliceID := n.user(t, "alice")
	bob, bobID := n.user(t, "bob")
	carol, _ := n.user(t, "carol")
	mustGroup := func(owner *client.Client, title string, members ...string) string {
		t.Helper()
		c, err := owner.CreateGroup(ctxT(t), title, members)
		if err != nil {
			t.Fatalf("create %s: %v", title, err)
		}
		return c.ID
	}
	setLevel := func(c *client.Client, conv, level string) {
		t.Helper()
		if err := c.SetNotificationLevel(ctxT(t), conv, level); err != nil {
			t.Fatalf("set %s in %s: %v", level, conv, err)
		}
	}
	levels := func(c *client.Client) map[string]string {
		t.Helper()
		got, err := c.NotificationLevels(ctxT(t))
		if err != nil {
			t.Fatalf("NotificationLevels: %v", err)
		}
		return got
	}

	muted := mustGroup(alice, "muted", bobID)
	mentions := mustGroup(alice, "mentions", bobID)
	reset := mustGroup(alice, "reset")
	removed := mustGroup(bob, "removed", aliceID)
	mustGroup(alice, "untouched")
	direct, err := alice.CreateDirect(ctxT(t), bobID)
	if err != nil {
		t.Fatal(err)
	}
	setLevel(alice, muted, "none")
	setLevel(alice, mentions, "mentions")
	setLevel(alice, reset, "none")
	setLevel(alice, reset, "all")
	setLevel(alice, removed, "none")
	setLevel(alice, direct.ID, "mentions")
	setLevel(bob, muted, "mentions")
	if err := bob.RemoveMember(ctxT(t), removed, aliceID); err != nil {
		t.Fatal(err)
	}

	t.Run("each user gets their own levels, without all and without conversations they left", func(t *testing.T) {
		want := map[string]string{muted: "none", mentions: "mentions", direct.ID: "mentions"}
		if diff := cmp.Diff(want, levels(alice)); diff != "" {
			t.Errorf("alice's levels (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(map[string]string{muted: "mentions"}, levels(bob)); diff != "" {
			t.Errorf("bob's levels (-want +got):\n%s", diff)
		}
	})
	t.Run("the body is a list of conv and level, empty rather than null", func(t *testing.T) {
		status, body := rawRequest(t, "GET", n.URL+"/v1/me/notification-levels", carol.Tokens().AccessToken, "")
		if status != 200 || strings.TrimSpace(body) != `{"levels":[]}` {
			t.Fatalf("carol, with no level set: %d %s", status, body)
		}
		status, body = rawRequest(t, "GET", n.URL+"/v1/me/notification-levels", bob.Tokens().AccessToken, "")
		var got struct {
			Levels []map[string]string `json:"levels"`
		}
		if err := json.Unmarshal([]byte(body), &got); status != 200 || err != nil {
			t.Fatalf("bob: %d %s (%v)", status, body, err)
		}
		if diff := cmp.Diff([]map[string]string{{"conv": muted, "level": "mentions"}}, got.Levels); diff != "" {
			t.Errorf("bob's body %s (-want +got):\n%s", body, diff)
		}
	})
	t.Run("a level kept from a conversation left shows again on return", func(t *testing.T) {
		if _, err := bob.AddMembers(ctxT(t), removed, []string{aliceID}); err != nil {
			t.Fatal(err)
		}
		if got := levels(alice)[removed]; got != "none" {
			t.Errorf("alice's level in the group she rejoined = %q, want none", got)
		}
	})
	t.Run("a token is required", func(t *testing.T) {
		for _, token := range []string{"", "not-a-token"} {
			status, body := rawRequest(t, "GET", n.URL+"/v1/me/notification-levels", token, "")
			if status != 401 || !strings.Contains(body, `"code":"unauthenticated"`) {
				t.Errorf("token %q: %d %s; want 401 unauthenticated", token, status, body)
			}
		}
	})
	t.Run("another method is an unknown endpoint, as everywhere under /v1/", func(t *testing.T) {
		// The API answers a known path with the wrong method like an
		// unknown path (docs/protocol.md: it never answers 405).
		for _, method := range []string{"POST", "PUT", "DELETE", "PATCH"} {
			status, body := rawRequest(t, method, n.URL+"/v1/me/notification-levels", alice.Tokens().AccessToken, `{"levels":[]}`)
			if status != 404 || !strings.Contains(body, `"code":"not_found"`) {
				t.Errorf("%s: %d %s; want 404 not_found", method, status, body)
			}
		}
		if got := levels(alice); got[muted] != "none" {
			t.Errorf("after the refused writes alice's levels are %v", got)
		}
	})
}
