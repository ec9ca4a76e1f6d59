package loadtest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/natter-chat/natter/client"
)

// sends measures durable sends/s and latencies: Senders users each send
// Messages messages, Window at a time, into a direct conversation whose
// other member is connected and receives them.
func (r *run) sends(ctx context.Context) (*Result, error) {
	o := r.opts
	senders, err := r.register(ctx, "s", "senders", o.Senders)
	if err != nil {
		return nil, err
	}
	receivers, err := r.register(ctx, "r", "receivers", o.Senders)
	if err != nil {
		return nil, err
	}
	convs := make([]string, o.Senders)
	err = forEach(ctx, o.Senders, o.SetupParallel, func(ctx context.Context, i int) error {
		c, err := retry(ctx, func() (client.Conversation, error) { return senders[i].c.CreateDirect(ctx, receivers[i].id) })
		if err != nil {
			return fmt.Errorf("create direct conversation: %w", err)
		}
		convs[i] = c.ID
		return nil
	})
	if err != nil {
		return nil, err
	}

	tr := newTracker(r.id+"-", o.Senders*o.Messages)
	clients := make([]*client.Client, 0, 2*o.Senders)
	for i := range o.Senders {
		clients = append(clients, receivers[i].c, senders[i].c)
	}
	conns, err := r.connectAll(ctx, clients, func(i int) func(client.ServerFrame) {
		if i%2 == 0 { // receivers
			return tr.onPush
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	defer closeAll(conns)

	r.printf("sending: %d senders x %d messages, window %d, %d-byte texts, at most %s\n", o.Senders, o.Messages, o.Window, o.TextSize, o.Duration)
	text := strings.Repeat("x", o.TextSize)
	mctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for i := range o.Senders {
		conn := conns[2*i+1]
		var next atomic.Int64
		for range o.Window {
			wg.Go(func() {
				for {
					j := int(next.Add(1)) - 1
					if j >= o.Messages || mctx.Err() != nil {
						return
					}
					k := i*o.Messages + j
					t0 := tr.sending(k)
					_, dup, err := conn.Send(mctx, convs[i], tr.clientID(k), text)
					tr.done(k, t0, dup, err, err != nil && mctx.Err() != nil)
					if err != nil && conn.Err() != nil {
						return // this sender's connection is gone
					}
				}
			})
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	cancel()

	var res Result
	res.ConnLost = lost(conns)
	acked := tr.acks.Load()
	tr.waitDeliveries(acked, o.Drain, ctx.Done())
	res.Deliveries = tr.deliveries()
	tr.fill(&res, elapsed, 1)
	if res.Acked == 0 {
		return &res, fmt.Errorf("no send was acknowledged (errors: %s)", formatTally(res.Errors))
	}
	return &res, nil
}
