// Package metrics defines Natter's Prometheus metrics in one place.
//
// Every metric is created by New and registered on the registry it is
// given: there are no global collectors, so tests can build as many
// servers as they like. Metric names start with natter_.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics holds the collectors the transports and the core update.
type Metrics struct {
	Connections   prometheus.Gauge       // open WebSocket connections
	FramesIn      *prometheus.CounterVec // by frame type
	FramesOut     prometheus.Counter     // frames queued to clients
	Sends         *prometheus.CounterVec // by result: ok, duplicate, or an error code
	SendLatency   prometheus.Histogram   // frame or request received → ack written, seconds
	SlowConsumers prometheus.Counter     // connections closed for not reading (fan-out queue overflow)
	CommitLatency prometheus.Histogram   // one group commit, seconds
	CommitBatch   prometheus.Histogram   // sends per group commit
	Errors        *prometheus.CounterVec // errors returned to clients, by code
	HTTPRequests  *prometheus.CounterVec // by route and status
	HTTPLatency   *prometheus.HistogramVec
	BusDropped    prometheus.CounterFunc
}

// New creates the collectors and registers them, with the Go and process
// collectors, on reg. busDropped may be nil.
func New(reg prometheus.Registerer, busDropped func() float64) *Metrics {
	lat := []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}
	m := &Metrics{
		Connections: prometheus.NewGauge(prometheus.GaugeOpts{Name: "natter_ws_connections", Help: "Open WebSocket connections."}),
		FramesIn:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "natter_ws_frames_in_total", Help: "Frames received from clients, by type."}, []string{"type"}),
		FramesOut:   prometheus.NewCounter(prometheus.CounterOpts{Name: "natter_ws_frames_out_total", Help: "Frames queued to clients."}),
		Sends:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "natter_sends_total", Help: "Message sends, by result (ok, duplicate or error code)."}, []string{"result"}),
		SendLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "natter_send_latency_seconds", Help: "Time from receiving a send to writing its ack.", Buckets: lat}),
		SlowConsumers: prometheus.NewCounter(prometheus.CounterOpts{Name: "natter_ws_slow_consumer_closes_total",
			Help: "Connections closed because their fan-out queue overflowed."}),
		CommitLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "natter_store_commit_seconds", Help: "Duration of one group commit.", Buckets: lat}),
		CommitBatch: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "natter_store_commit_batch_size", Help: "Messages per group commit.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512}}),
		Errors:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "natter_errors_total", Help: "Errors returned to clients, by code."}, []string{"code"}),
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "natter_http_requests_total", Help: "REST requests, by route and status."}, []string{"route", "status"}),
		HTTPLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "natter_http_request_seconds", Help: "REST request duration, by route.", Buckets: lat},
			[]string{"route"}),
	}
	reg.MustRegister(m.Connections, m.FramesIn, m.FramesOut, m.Sends, m.SendLatency, m.SlowConsumers,
		m.CommitLatency, m.CommitBatch, m.Errors, m.HTTPRequests, m.HTTPLatency,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if busDropped != nil {
		m.BusDropped = prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "natter_bus_dropped_events_total",
			Help: "Events the bus dropped for a full subscriber queue (clients catch up by seq)."}, busDropped)
		reg.MustRegister(m.BusDropped)
	}
	return m
}
