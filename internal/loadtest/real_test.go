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

// TestRun_AgainstTheRealServer runs the sends and fanout scenarios, small,
// against a real node: every send must be acked and delivered.
func TestRun_AgainstTheRealServer(t *testing.T) {
	n := chattest.StartNode(t, "")
	for _, tc := range []struct {
		opts              loadtest.Options
		acked, deliveries int64
	}{
		{loadtest.Options{Scenario: loadtest.ScenarioSends, Senders: 4, Messages: 50, Window: 4}, 200, 200},
		// The sender's own connection has its copy in the ack.
		{loadtest.Options{Scenario: loadtest.ScenarioFanout, Members: 30, Messages: 10, Rate: 100, SetupParallel: 8}, 10, 290},
	} {
		t.Run(tc.opts.Scenario, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			tc.opts.Addr = n.URL
			var out bytes.Buffer
			if err := loadtest.Run(ctx, tc.opts, &out); err != nil {
				t.Fatalf("Run: %v\n%s", err, out.String())
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			var res loadtest.Result
			if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
				t.Fatalf("last line is not a Result: %v\n%s", err, out.String())
			}
			if int64(res.Acked) != tc.acked || res.Deliveries != tc.deliveries || res.ExpectedDeliveries != tc.deliveries || len(res.Errors) != 0 {
				t.Errorf("acked %d, delivered %d of %d, errors %v; want %d acked and %d delivered\n%s",
					res.Acked, res.Deliveries, res.ExpectedDeliveries, res.Errors, tc.acked, tc.deliveries, out.String())
			}
		})
	}
}
