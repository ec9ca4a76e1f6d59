package app_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/internal/app"
)

func TestRateLimits_RefuseWithRetryAfterAndNeverLoseWhatWasAcked(t *testing.T) {
	n := startNode(t, "", func(c *app.Config) {
		c.SendRate = 5      // burst 10
		c.RESTRate = 20     // burst 40
		c.WS.FrameRate = 25 // burst 50
	})
	alice, _ := n.user(t, "alice")
	_, bobID := n.user(t, "bob")
	conv, err := alice.CreateDirect(ctxT(t), bobID)
	if err != nil {
		t.Fatal(err)
	}
	ws, _ := connect(t, alice)

	// Sends per user: a burst of 30 gets some acks, then rate_limited.
	acked, limited := map[string]bool{}, 0
	for i := range 30 {
		cid := fmt.Sprint("s", i)
		_, _, err := ws.Send(ctxT(t), conv.ID, cid, "flood")
		var ce *client.Error
		switch {
		case err == nil:
			acked[cid] = true
		case client.ErrorCode(err) == "rate_limited" && errors.As(err, &ce) && ce.RetryAfter > 0:
			limited++
		default:
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if limited == 0 || len(acked) == 0 || len(acked) > 12 {
		t.Fatalf("30 rapid sends at 5/s (burst 10): %d acked, %d limited", len(acked), limited)
	}
	// Everything acked is stored; nothing refused is.
	stored := historyAfter(t, alice, conv.ID, 0)
	if len(stored) != len(acked) {
		t.Fatalf("%d messages stored, %d acked", len(stored), len(acked))
	}
	for _, m := range stored {
		if !acked[m.ClientID] {
			t.Fatalf("a refused send (%s) was stored", m.ClientID)
		}
	}

	// Frames per connection.
	pingLimited := 0
	for range 80 {
		if err := ws.Ping(ctxT(t)); client.ErrorCode(err) == "rate_limited" {
			pingLimited++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if pingLimited == 0 {
		t.Fatal("80 rapid frames at 25/s (burst 50) were never limited")
	}

	// Presence changes per connection (1/s, burst 5), on a fresh
	// connection whose frame budget (burst 50) is not the limit.
	fresh, _ := connect(t, alice)
	statusLimited := 0
	for i := range 12 {
		if err := fresh.SetStatus(ctxT(t), []string{"away", "online"}[i%2]); client.ErrorCode(err) == "rate_limited" {
			statusLimited++
		} else if err != nil && client.ErrorCode(err) != "rate_limited" {
			t.Fatal(err)
		}
	}
	if statusLimited == 0 {
		t.Fatal("12 rapid presence changes were never limited")
	}

	// REST requests per user: 429 with Retry-After.
	limitedREST := 0
	for range 60 {
		status, body := rawRequest(t, "GET", n.URL+"/v1/users/me", alice.Tokens().AccessToken, "")
		if status == 429 {
			if errorCode(body) != "rate_limited" {
				t.Fatalf("429 body %s", body)
			}
			limitedREST++
		}
	}
	if limitedREST == 0 {
		t.Fatal("60 rapid REST calls at 20/s (burst 40) were never limited")
	}
}
