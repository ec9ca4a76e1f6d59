package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/jobs"
	"github.com/natter-chat/natter/internal/natsbus"
)

// Roles of a node (Config.Role).
const (
	RoleAll    = "all"    // serves clients and does background work
	RoleAPI    = "api"    // serves clients and enqueues jobs; does no background work
	RoleWorker = "worker" // does background work: jobs and the search indexer; serves only /healthz, /readyz and /metrics
)

// checkRole validates Config.Role: api and worker nodes need cluster
// mode (jobs must reach another node).
func checkRole(cfg *Config) error {
	switch cfg.Role {
	case "":
		cfg.Role = RoleAll
	case RoleAll:
	case RoleAPI, RoleWorker:
		if cfg.Bus == "" {
			return fmt.Errorf("role %q needs cluster mode (--bus): in embedded mode one node does everything", cfg.Role)
		}
	default:
		return fmt.Errorf("role %q: want all, api or worker", cfg.Role)
	}
	return nil
}

// setupJobs makes the node's job runner: in-process in embedded mode,
// JetStream work queues in cluster mode. Outcomes are counted in
// natter_jobs_total{kind,result}.
func (a *App) setupJobs(ctx context.Context, reg prometheus.Registerer) (jobs.Runner, error) {
	outcomes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "natter_jobs_total",
		Help: "Background job attempts by kind and result (done, retry, dead: dead-lettered).",
	}, []string{"kind", "result"})
	if err := reg.Register(outcomes); err != nil {
		return nil, err
	}
	observe := func(kind, result string) { outcomes.WithLabelValues(kind, result).Inc() }
	if a.cluster == nil {
		return jobs.NewMemory(jobs.MemoryOptions{Logger: a.log, Observe: observe}), nil
	}
	name := a.cfg.Cluster
	if name == "" {
		name = "natter"
	}
	return natsbus.NewJobs(ctx, a.cluster.nc, natsbus.JobsOptions{
		Prefix: name, Replicas: a.cfg.NATSReplicas, AckWait: a.cfg.JobsAckWait, Logger: a.log, Observe: observe,
	})
}

// runJobs does background jobs until ctx is done, unless the node has
// the api role.
func (a *App) runJobs(ctx context.Context) {
	if a.jobs == nil || a.cfg.Role == RoleAPI {
		return
	}
	if err := a.jobs.Run(ctx); err != nil {
		a.log.Error("jobs stopped", "err", err)
	}
}

// workerHandler is what a worker node serves on its listen address:
// liveness, readiness and metrics, nothing for clients.
func (a *App) workerHandler(reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "application/json")
		if err := a.ready(ctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(map[string]string{"status": "unavailable", "reason": chat.ErrorMessage(err)})
			return
		}
		_, _ = w.Write([]byte(`{"status":"ready"}` + "\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"error":{"code":"not_found","message":"this is a worker node: it serves no clients"}}` + "\n"))
	})
	return mux
}
