package loadtest

import (
	"context"
	"fmt"
	"time"

	"github.com/natter-chat/natter/client"
)

// idle measures the server's memory per idle connection: it reads the
// server's resident memory, opens Conns authenticated connections, waits
// for the memory to settle, reads it again and divides.
func (r *run) idle(ctx context.Context) (*Result, error) {
	o := r.opts
	users, err := r.register(ctx, "i", "users", o.Users)
	if err != nil {
		return nil, err
	}
	var res Result
	before, memErr := settledMemory(ctx, r.hc, o.Addr, 10, time.Second)
	if memErr != nil {
		r.printf("warning: cannot read server memory, reporting connections only: %v\n", memErr)
	} else {
		r.printf("setup: server RSS %.1f MiB before connecting\n", before.RSS/(1<<20))
	}

	clients := make([]*client.Client, o.Conns)
	for i := range clients {
		clients[i] = users[i%len(users)].c
	}
	r.printf("connecting: %d connections for %d users, %d at a time, at most %s\n", o.Conns, o.Users, o.ConnectParallel, o.Duration)
	mctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	var lat Samples
	var fails Tally
	start := time.Now()
	conns := r.connect(mctx, clients, nil, &lat, &fails)
	res.ElapsedSec = time.Since(start).Seconds()
	cancel()
	defer closeAll(conns)

	for _, c := range conns {
		if c != nil {
			res.Conns++
		}
	}
	if missing := o.Conns - res.Conns - fails.Total(); missing > 0 {
		fails.AddN("not_attempted_in_time", missing)
	}
	res.Errors = fails.Map()
	connect := lat.Summary()
	res.Connect = &connect
	r.printf("connected: %d of %d ready in %.2fs\n", res.Conns, o.Conns, res.ElapsedSec)
	if res.Conns == 0 {
		return &res, fmt.Errorf("no connection could be opened (errors: %s)", formatTally(res.Errors))
	}

	if memErr == nil {
		after, err := settledMemory(ctx, r.hc, o.Addr, 10, time.Second)
		if err != nil {
			r.printf("warning: cannot read server memory after connecting: %v\n", err)
		} else {
			n := float64(res.Conns)
			res.RSSBefore, res.RSSAfter = int64(before.RSS), int64(after.RSS)
			res.KiBPerConn = (after.RSS - before.RSS) / 1024 / n
			res.HeapStackKiBPerConn = (after.HeapStack - before.HeapStack) / 1024 / n
			res.GoroutinesConn = (after.Goroutines - before.Goroutines) / n
			if after.RSS < before.RSS {
				r.printf("warning: the server's RSS shrank while connecting (memory of earlier load was being returned to the OS); measure against a freshly started server\n")
			}
		}
	}
	res.ConnLost = lost(conns)
	return &res, nil
}
