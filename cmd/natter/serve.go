package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/natter-chat/natter/internal/app"
	"github.com/natter-chat/natter/internal/wsapi"
)

type serveCmd struct {
	Addr            string          `help:"Address to listen on." default:"127.0.0.1:8080" env:"NATTER_ADDR"`
	Data            string          `help:"Data directory (database, signing key); created on first start." default:"natter-data" env:"NATTER_DATA" type:"path"`
	Store           string          `help:"Where data lives: empty for SQLite under --data (embedded mode), or a postgres:// URL (cluster mode)." env:"NATTER_STORE"`
	StoreSchema     string          `help:"PostgreSQL schema for Natter's tables (created if missing)." default:"public" env:"NATTER_STORE_SCHEMA"`
	Bus             string          `help:"Empty for the in-process bus (embedded mode), or NATS URLs, comma-separated, with JetStream enabled (cluster mode)." env:"NATTER_BUS"`
	Cluster         string          `help:"Cluster name on NATS: subject prefix and bucket name prefix, so clusters can share a NATS server." default:"natter" env:"NATTER_CLUSTER"`
	NATSReplicas    int             `help:"Replicas of Natter's JetStream buckets (presence, node ids); 3 on a NATS cluster of 3 or more." default:"1" env:"NATTER_NATS_REPLICAS"`
	CursorLag       time.Duration   `help:"Deprecated, ignored: the sync cursor in live frames follows the nodes' watermarks." default:"2s" env:"NATTER_CURSOR_LAG"`
	NodeID          int64           `help:"Node id, 0-1023, part of every id; -1 picks one (0 in embedded mode, a free id leased on NATS in cluster mode)." default:"-1" env:"NATTER_NODE_ID"`
	MaxTextBytes    int             `help:"Longest message text in bytes." default:"16384" env:"NATTER_MAX_TEXT_BYTES"`
	AllowedOrigins  []string        `help:"Browser origins allowed to open WebSockets besides the server's own (comma-separated; * for any)." env:"NATTER_ALLOWED_ORIGINS"`
	TrustedProxies  []string        `help:"Load balancers (IPs or CIDRs, comma-separated) whose X-Forwarded-For header names the client; the login throttle counts failures per client address." env:"NATTER_TRUSTED_PROXIES"`
	ShutdownTimeout time.Duration   `help:"Longest graceful shutdown." default:"25s" env:"NATTER_SHUTDOWN_TIMEOUT"`
	DrainJitter     time.Duration   `help:"On shutdown, clients are told to reconnect within this random delay." default:"5s" env:"NATTER_DRAIN_JITTER"`
	WSQueueFrames   int64           `help:"Frames queued per WebSocket before the client is dropped as too slow." default:"1024" env:"NATTER_WS_QUEUE_FRAMES"`
	WSIdleTimeout   time.Duration   `help:"Drop a WebSocket that sends nothing (not even a pong) this long." default:"60s" env:"NATTER_WS_IDLE_TIMEOUT"`
	WSPingInterval  time.Duration   `help:"How often the server pings each WebSocket." default:"20s" env:"NATTER_WS_PING_INTERVAL"`
	DebugAddr       string          `help:"If set, serve /debug/pprof and /metrics on this address (keep it private)." env:"NATTER_DEBUG_ADDR"`
	SendRate        float64         `help:"Message sends per second per user (burst twice as many); negative for unlimited." default:"200" env:"NATTER_SEND_RATE"`
	RESTRate        float64         `help:"REST requests per second per user (burst twice as many); negative for unlimited." default:"100" env:"NATTER_REST_RATE"`
	FrameRate       float64         `help:"WebSocket frames per second per connection (burst twice as many)." default:"200" env:"NATTER_FRAME_RATE"`
	PresenceGrace   time.Duration   `help:"A user goes offline this long after their last connection closed (absorbs flapping)." default:"5s" env:"NATTER_PRESENCE_GRACE"`
	WSAwayAfter     time.Duration   `help:"A connection that answers no ping this long is reported away." default:"45s" env:"NATTER_WS_AWAY_AFTER"`
	MaxReplay       int             `help:"Most changes one sync replays; beyond, clients are told to reload (resync_required)." default:"10000" env:"NATTER_MAX_REPLAY"`
	SearchInterval  time.Duration   `help:"How long the search indexer waits, once caught up, before looking for changed messages again (how soon a message becomes searchable)." default:"1s" env:"NATTER_SEARCH_INTERVAL"`
	Role            string          `help:"What this node does: all; api (serves clients, enqueues background jobs, does none); worker (does background jobs and search indexing, serves only /healthz, /readyz and /metrics). api and worker need cluster mode." enum:"all,api,worker" default:"all" env:"NATTER_ROLE"`
	JobsAckWait     time.Duration   `help:"Cluster mode: a background job whose node stops answering is redelivered after this." default:"30s" env:"NATTER_JOBS_ACK_WAIT"`
	ExportMaxBytes  int64           `help:"Most bytes of files (attachments and avatar) one data export carries; a bigger export is refused with 413 too_large." default:"1073741824" env:"NATTER_EXPORT_MAX_BYTES"`
	Push            pushFlags       `embed:""`
	Attachments     attachmentFlags `embed:""`
	LogFormat       string          `help:"Log format: auto (text on a terminal, else JSON), text or json." enum:"auto,text,json" default:"auto" env:"NATTER_LOG_FORMAT"`
	LogLevel        string          `help:"Log level: debug, info, warn or error." enum:"debug,info,warn,error" default:"info" env:"NATTER_LOG_LEVEL"`
}

func (s *serveCmd) Run(ctx context.Context) error {
	log := newLogger(os.Stderr, s.LogFormat, s.LogLevel)
	proxies, err := parsePrefixes(s.TrustedProxies)
	if err != nil {
		return err
	}
	a, err := app.New(ctx, app.Config{
		Addr: s.Addr, DataDir: s.Data, NodeID: s.NodeID, Store: s.Store, StoreSchema: s.StoreSchema, Bus: s.Bus, Cluster: s.Cluster, NATSReplicas: s.NATSReplicas, CursorLag: s.CursorLag, MaxTextBytes: s.MaxTextBytes,
		AllowedOrigins: s.AllowedOrigins, TrustedProxies: proxies, ShutdownTimeout: s.ShutdownTimeout, DrainJitter: s.DrainJitter,
		DebugAddr: s.DebugAddr, Logger: log, SendRate: s.SendRate, RESTRate: s.RESTRate,
		PresenceGrace: s.PresenceGrace, MaxReplay: s.MaxReplay, SearchInterval: s.SearchInterval,
		Role: s.Role, JobsAckWait: s.JobsAckWait, ExportMaxBytes: s.ExportMaxBytes,
		Push:        s.Push.config(),
		Attachments: s.Attachments.config(),
		WS: wsapi.Options{QueueFrames: s.WSQueueFrames, IdleTimeout: s.WSIdleTimeout, PingInterval: s.WSPingInterval,
			AwayAfter: s.WSAwayAfter, FrameRate: s.FrameRate},
	})
	if err != nil {
		return err
	}
	if err := a.Listen(); err != nil {
		return err
	}
	where := "data in " + s.Data
	if s.Store != "" || s.Bus != "" {
		where = fmt.Sprintf("cluster %s, node %d", s.Cluster, a.NodeID())
	}
	fmt.Fprintf(os.Stderr, "natter %s listening on http://%s (%s)\n", version, a.Addr(), where)
	return a.Run(ctx)
}

func newLogger(w io.Writer, format, level string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "auto" {
		format = "json"
		if f, ok := w.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				format = "text"
			}
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// parsePrefixes parses IP addresses and CIDR networks.
func parsePrefixes(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range list {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		if p, err := netip.ParsePrefix(v); err == nil {
			if p.Addr().Is4In6() && p.Bits() >= 96 { // ::ffff:a.b.c.d/n names IPv4 peers, which arrive unmapped
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(v)
		if err != nil {
			return nil, fmt.Errorf("--trusted-proxies: %q is neither an IP address nor a CIDR network", v)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}
