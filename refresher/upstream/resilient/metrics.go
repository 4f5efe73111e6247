package resilient

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the Prometheus collectors of wrapped providers. One Metrics
// may serve several providers: each series is labelled with the provider's
// name.
type Metrics struct {
	// BreakerState is quotehub_upstream_breaker_state{provider}: 0 closed,
	// 1 half-open, 2 open.
	BreakerState *prometheus.GaugeVec
	// Retries is quotehub_upstream_retries_total{provider}: attempts made
	// again after a retryable failure.
	Retries *prometheus.CounterVec
	// Transitions is
	// quotehub_upstream_breaker_transitions_total{provider,to}: changes of
	// the breaker's state, by the state entered.
	Transitions *prometheus.CounterVec
}

// NewMetrics creates the collectors and registers them with reg (nil: not
// registered). It panics if reg already holds collectors of these names,
// as prometheus.MustRegister does.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		BreakerState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "quotehub_upstream_breaker_state",
			Help: "Circuit breaker state of an upstream provider: 0 closed, 1 half-open, 2 open.",
		}, []string{"provider"}),
		Retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quotehub_upstream_retries_total",
			Help: "Upstream fetches attempted again after a retryable failure.",
		}, []string{"provider"}),
		Transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quotehub_upstream_breaker_transitions_total",
			Help: "Circuit breaker state changes of an upstream provider, by the state entered.",
		}, []string{"provider", "to"}),
	}
	if reg != nil {
		reg.MustRegister(m.BreakerState, m.Retries, m.Transitions)
	}
	return m
}

// stateValue is the gauge value of a breaker state.
func stateValue(state string) float64 {
	switch state {
	case StateHalfOpen:
		return 1
	case StateOpen:
		return 2
	default:
		return 0
	}
}
