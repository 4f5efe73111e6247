package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"runtime/debug"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"quotehub"
)

// statusLimit is the most active symbols the status lists.
const statusLimit = 1000

// nodeStatus is the operator's view of one node, served as JSON on the
// admin listener at /status (never on the public port).
type nodeStatus struct {
	Node        string             `json:"node"`
	Build       buildInfo          `json:"build"`
	Started     time.Time          `json:"started"`
	Uptime      string             `json:"uptime"`
	NotReady    []string           `json:"not_ready,omitempty"` // failing readiness checks
	Connections map[string]float64 `json:"connections"`         // by transport
	Subscribed  []subscribed       `json:"subscribed"`          // local subscribers per symbol
	Active      []quotehub.Touched `json:"active"`              // the active set, newest first
	ActiveError string             `json:"active_error,omitempty"`
	Leases      *leaseStatus       `json:"leases,omitempty"` // cluster mode
	Breakers    map[string]string  `json:"breakers"`         // upstream circuit breakers
	Config      map[string]any     `json:"config"`           // secrets redacted
}

type buildInfo struct {
	Go       string `json:"go"`
	Revision string `json:"revision,omitempty"`
	Time     string `json:"time,omitempty"`
	Modified bool   `json:"modified,omitempty"`
}

type subscribed struct {
	Symbol      string `json:"symbol"`
	Subscribers int    `json:"subscribers"`
}

type leaseStatus struct {
	Slots int   `json:"slots"`
	Held  []int `json:"held"`
}

// statusHandler serves the node's status.
func (n *node) statusHandler(cfg Config, started time.Time, reg prometheus.Gatherer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		st := nodeStatus{
			Node: cfg.NodeID, Build: readBuild(), Started: started.UTC(),
			Uptime:      time.Since(started).Round(time.Second).String(),
			Connections: map[string]float64{}, Breakers: map[string]string{}, Config: redacted(cfg),
		}
		for name, chk := range n.stores.checks {
			if err := chk.Ready(ctx); err != nil {
				st.NotReady = append(st.NotReady, name+": "+err.Error())
			}
		}
		for _, s := range n.hub.Symbols() {
			st.Subscribed = append(st.Subscribed, subscribed{s, n.hub.Subscribers(s)})
		}
		slices.SortFunc(st.Subscribed, func(a, b subscribed) int { return b.Subscribers - a.Subscribers })
		var err error
		if st.Active, err = n.stores.active.Recent(ctx, statusLimit); err != nil {
			st.ActiveError = err.Error()
		}
		if n.stores.held != nil {
			st.Leases = &leaseStatus{Slots: cfg.RefreshSlots, Held: n.stores.held()}
		}
		gauges(reg, "quotehub_connections", "transport", func(k string, v float64) { st.Connections[k] = v })
		gauges(reg, "quotehub_upstream_breaker_state", "provider", func(k string, v float64) {
			st.Breakers[k] = [...]string{"closed", "half-open", "open"}[min(max(int(v), 0), 2)]
		})
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(st)
	})
}

// gauges calls f with the label value and value of each series of a gauge.
func gauges(g prometheus.Gatherer, name, label string, f func(string, float64)) {
	mfs, _ := g.Gather()
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label {
					f(lp.GetValue(), m.GetGauge().GetValue())
				}
			}
		}
	}
}

func readBuild() buildInfo {
	b := buildInfo{}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	b.Go = bi.GoVersion
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.time":
			b.Time = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

// secretName matches the settings whose value is a credential.
var secretName = regexp.MustCompile(`(?i)secret|password|token|dsn`)

// redacted returns the configuration by field name, with credentials
// replaced: a field whose name says it holds one, and the password of any
// URL (redis://:password@host).
func redacted(cfg Config) map[string]any {
	out := map[string]any{}
	v := reflect.ValueOf(cfg)
	for i := range v.NumField() {
		name, f := v.Type().Field(i).Name, v.Field(i).Interface()
		s, isString := f.(string)
		switch {
		case isString && s != "" && secretName.MatchString(name):
			f = "(redacted)"
		case isString:
			if u, err := url.Parse(s); err == nil && u.User != nil {
				if _, has := u.User.Password(); has {
					u.User = url.UserPassword(u.User.Username(), "redacted")
					f = u.String()
				}
			}
		}
		out[name] = f
	}
	return out
}
