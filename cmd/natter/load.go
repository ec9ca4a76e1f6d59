package main

import (
	"context"
	"os"
	"time"

	"github.com/natter-chat/natter/internal/loadtest"
)

type loadCmd struct {
	Scenario        string        `help:"What to measure: sends (durable sends/s and latency), fanout (delivery to a big group), idle (memory per connection) or upload (attachment uploads/s and MB/s)." enum:"sends,fanout,idle,upload" default:"sends"`
	Addr            string        `help:"Server base URL." default:"http://127.0.0.1:8080" env:"NATTER_LOAD_ADDR"`
	AllowRemote     bool          `help:"Allow a target that is not on this machine's loopback."`
	Duration        time.Duration `help:"Cap on the measured phase." default:"1m"`
	Drain           time.Duration `help:"Wait this long after the measured phase for deliveries in flight." default:"10s"`
	Senders         int           `help:"Sending users, each in its own direct conversation with a connected receiver (sends); uploading users (upload)." default:"10"`
	Messages        int           `help:"Messages per sender (sends) or in total (fanout); 0 means the scenario's default." default:"0"`
	Window          int           `help:"Sends each sender keeps in flight (sends)." default:"1"`
	Members         int           `help:"Group size, sender included (fanout)." default:"1000"`
	Rate            float64       `help:"Messages per second from the one sender (fanout)." default:"20"`
	Conns           int           `help:"Connections to open (idle)." default:"10000"`
	Users           int           `help:"Users whose tokens the idle connections share." default:"1"`
	Uploads         int           `help:"Files each sender uploads, one after another (upload)." default:"50"`
	FileSize        int           `help:"Bytes per uploaded file (upload)." default:"1048576"`
	Nodes           []string      `help:"Base URLs of several nodes of one cluster (instead of --addr): users are spread over them, and each receiver is on another node than its sender."`
	LocalAddrs      []string      `help:"Source addresses for WebSockets, e.g. 127.0.0.2,127.0.0.3 (more ephemeral ports)."`
	TextSize        int           `help:"Bytes per message text." default:"64"`
	SetupParallel   int           `help:"Concurrent registrations during setup." default:"4"`
	ConnectParallel int           `help:"Concurrent WebSocket dials." default:"64"`
}

func (l *loadCmd) Run(ctx context.Context) error {
	return loadtest.Run(ctx, loadtest.Options{
		Scenario: l.Scenario, Addr: l.Addr, AllowRemote: l.AllowRemote, Duration: l.Duration, Drain: l.Drain,
		Senders: l.Senders, Messages: l.Messages, Window: l.Window, Members: l.Members, Rate: l.Rate,
		Conns: l.Conns, Users: l.Users, LocalAddrs: l.LocalAddrs, Nodes: l.Nodes, TextSize: l.TextSize,
		SetupParallel: l.SetupParallel, ConnectParallel: l.ConnectParallel, Uploads: l.Uploads, FileSize: l.FileSize,
	}, os.Stdout)
}
