package redis

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the Redis stores' Prometheus collectors.
type Metrics struct {
	Received      prometheus.Counter
	Resyncs       *prometheus.CounterVec
	PublishErrors prometheus.Counter
	Channels      prometheus.Gauge
	Leases        prometheus.Gauge
	LeaseChanges  *prometheus.CounterVec
	FetchLocks    *prometheus.CounterVec
	StateLost     prometheus.Counter
	Commands      *prometheus.HistogramVec
}

// NewMetrics creates the collectors and registers them with reg (nil: not
// registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Received: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "quotehub_bus_messages_received_total", Help: "Quotes received from Redis pub/sub.",
		}),
		Resyncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quotehub_bus_resyncs_total", Help: "Re-reads of watched symbols from the cache, by reason (subscribed, reconnect, periodic, degraded).",
		}, []string{"reason"}),
		PublishErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "quotehub_bus_publish_errors_total", Help: "Publish batches Redis refused or could not take; delivered locally instead.",
		}),
		Channels: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "quotehub_bus_channels", Help: "Pub/sub channels this node is subscribed to.",
		}),
		Leases: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "quotehub_lease_slots_held", Help: "Refresh slots whose lease this node holds.",
		}),
		LeaseChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quotehub_lease_changes_total", Help: "Slot leases acquired, released and lost by this node.",
		}, []string{"change"}),
		FetchLocks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quotehub_fetch_locks_total", Help: "Cluster-wide single-flight locks, by result (acquired, busy, error).",
		}, []string{"result"}),
		StateLost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "quotehub_redis_state_lost_total", Help: "Times this node found that Redis had lost the cluster's shared state (flush, empty restart or failover) and rebuilt it.",
		}),
		Commands: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "quotehub_redis_command_duration_seconds",
			Help:    "Round trip of the node's Redis commands and pipelines, by kind (command, pipeline).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"kind"}),
	}
	if reg != nil {
		reg.MustRegister(m.Received, m.Resyncs, m.PublishErrors, m.Channels, m.Leases, m.LeaseChanges, m.FetchLocks, m.StateLost, m.Commands)
	}
	return m
}
