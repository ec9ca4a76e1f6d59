package loadtest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/natter-chat/natter/client"
)

// Member ids per request when building the fanout group: the creation
// lists at most createChunk members (so the group, its creator included,
// starts with at most 100), and each addition at most addChunk.
const (
	createChunk = 99
	addChunk    = 100
)

// fanout measures delivery to a large group: Members users in one group,
// all connected; one of them sends Messages messages at Rate per second,
// and every other member's connection should receive each one (the
// sending connection has its copy in the ack and gets no echo).
func (r *run) fanout(ctx context.Context) (*Result, error) {
	o := r.opts
	users, err := r.register(ctx, "m", "members", o.Members)
	if err != nil {
		return nil, err
	}
	conv, err := r.createGroup(ctx, users)
	if err != nil {
		return nil, err
	}

	tr := newTracker(r.id+"-", o.Messages)
	clients := make([]*client.Client, len(users))
	for i, u := range users {
		clients[i] = u.c
	}
	conns, err := r.connectAll(ctx, clients, func(int) func(client.ServerFrame) { return tr.onPush })
	if err != nil {
		return nil, err
	}
	defer closeAll(conns)
	sender := conns[0]

	r.printf("sending: %d messages at %g/s to %d members, %d-byte texts, at most %s\n", o.Messages, o.Rate, o.Members, o.TextSize, o.Duration)
	text := strings.Repeat("x", o.TextSize)
	interval := time.Duration(float64(time.Second) / o.Rate)
	mctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for k := range o.Messages {
		if !sleepUntil(mctx, start.Add(time.Duration(k)*interval)) || sender.Err() != nil {
			break
		}
		t0 := tr.sending(k)
		// Sends do not wait for each other's acks, so a slow ack does not
		// slow the pace down.
		wg.Go(func() {
			_, dup, err := sender.Send(mctx, conv.ID, tr.clientID(k), text)
			tr.done(k, t0, dup, err, err != nil && mctx.Err() != nil)
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cancel()

	var res Result
	res.ConnLost = lost(conns)
	tr.waitDeliveries(tr.acks.Load()*int64(o.Members-1), o.Drain, ctx.Done())
	res.Deliveries = tr.deliveries()
	tr.fill(&res, elapsed, int64(o.Members-1))
	if res.Acked == 0 {
		return &res, fmt.Errorf("no send was acknowledged (errors: %s)", formatTally(res.Errors))
	}
	return &res, nil
}

// createGroup has users[0] create a group with all of users as members,
// in requests of bounded size.
func (r *run) createGroup(ctx context.Context, users []user) (client.Conversation, error) {
	owner := users[0].c
	others := make([]string, 0, len(users)-1)
	for _, u := range users[1:] {
		others = append(others, u.id)
	}
	first := others[:min(createChunk, len(others))]
	conv, err := retry(ctx, func() (client.Conversation, error) { return owner.CreateGroup(ctx, "load "+r.id, first) })
	if err != nil {
		return conv, fmt.Errorf("create group: %w", err)
	}
	for rest := others[len(first):]; len(rest) > 0; {
		chunk := rest[:min(addChunk, len(rest))]
		rest = rest[len(chunk):]
		if _, err := retry(ctx, func() (client.Conversation, error) { return owner.AddMembers(ctx, conv.ID, chunk) }); err != nil {
			return conv, fmt.Errorf("add members: %w", err)
		}
	}
	r.printf("setup: group %s with %d members\n", conv.ID, len(users))
	return conv, nil
}

// sleepUntil waits until t and reports whether ctx is still live.
func sleepUntil(ctx context.Context, t time.Time) bool {
	if d := time.Until(t); d > 0 {
		timer := time.NewTimer(d)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-ctx.Done():
		}
	}
	return ctx.Err() == nil
}
