package web

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"quotehub"
)

// dependencies exports whether each dependency /readyz checks answers, as
// quotehub_dependency_up{dependency}: 1 when its check passes within a
// second at scrape time, 0 otherwise. It is what the "Redis or MySQL away"
// alert reads. The checks run at scrape time, in parallel, so the gauge is
// never older than the scrape and costs nothing between scrapes.
type dependencies struct {
	checks map[string]quotehub.HealthChecker
	desc   *prometheus.Desc
}

func newDependencies(checks map[string]quotehub.HealthChecker) *dependencies {
	return &dependencies{checks: checks, desc: prometheus.NewDesc("quotehub_dependency_up",
		"Whether a dependency the node's readiness needs (redis, users, ...) answers its check: 1 yes, 0 no.",
		[]string{"dependency"}, nil)}
}

// Describe implements prometheus.Collector.
func (d *dependencies) Describe(ch chan<- *prometheus.Desc) { ch <- d.desc }

// Collect implements prometheus.Collector.
func (d *dependencies) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for name, chk := range d.checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			up := 1.0
			if chk.Ready(ctx) != nil {
				up = 0
			}
			ch <- prometheus.MustNewConstMetric(d.desc, prometheus.GaugeValue, up, name)
		}()
	}
	wg.Wait()
}
