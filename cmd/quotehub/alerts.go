package main

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"quotehub"
	"quotehub/alert"
)

// alerts runs users' price alerts on this node. Every node keeps every
// enabled rule in an alert.Engine, loaded from the user store at start and
// reloaded per user when the bus says the user's rules changed (all of them
// after a bus resync). Only the node that refreshes a symbol evaluates its
// price changes (the refresher's OnChanged hook), so a rule fires once in
// the cluster; a fired alert is recorded in the user's fired log, which
// gives it its id, and published on the user bus, from which every node
// delivers it to the user's sessions.
//
// When the store cannot be reached, rules already loaded keep firing: the
// alert is pushed without an id (it is not in the log, so never replayed)
// and the failure is logged and counted; for recordBackoff after a failure
// alerts are pushed unrecorded at once instead of waiting for the store's
// timeout each.
type alerts struct {
	engine  *alert.Engine
	users   quotehub.UserStore
	bus     quotehub.UserBus
	log     zerolog.Logger
	timeout time.Duration
	// activate is told of a symbol that got its first rule, so it becomes
	// active at once rather than at the next heartbeat.
	activate func(symbol string)
	m        alertMetrics

	mu     sync.Mutex
	loaded map[int64]loadedRule          // rules in the engine
	byUser map[string]map[int64]struct{} // their ids by user
	dirty  map[string]struct{}           // users whose rules must be reloaded
	all    bool                          // reload every user's rules
	wake   chan struct{}                 // the reload loop has work
	fired  chan alert.Fired              // to record and publish, in order
	downAt time.Time                     // the last failed record
}

// loadedRule is what identifies the version of a rule in the engine.
type loadedRule struct {
	user    string
	version int64
	symbol  string
}

// recordBackoff is how long after a failed record alerts are pushed
// unrecorded without trying the store.
const recordBackoff = 5 * time.Second

// reloadRetry is how soon a reload that failed is tried again.
const reloadRetry = 2 * time.Second

// firedQueue bounds the alerts waiting to be recorded and published; past
// it an alert is dropped and counted (quotehub_alerts_dropped_total).
const firedQueue = 4096

type alertMetrics struct {
	rules          prometheus.Gauge
	fired          prometheus.Counter
	recordFailures prometheus.Counter
	dropped        prometheus.Counter
	reloadFailures prometheus.Counter
}

func newAlertMetrics(reg prometheus.Registerer) alertMetrics {
	m := alertMetrics{
		rules: prometheus.NewGauge(prometheus.GaugeOpts{Name: "quotehub_alert_rules",
			Help: "Enabled alert rules loaded on this node."}),
		fired: prometheus.NewCounter(prometheus.CounterOpts{Name: "quotehub_alerts_fired_total",
			Help: "Alerts fired by this node (it refreshes their symbols)."}),
		recordFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "quotehub_alert_record_failures_total",
			Help: "Fired alerts pushed without an id because the user store could not record them."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "quotehub_alerts_dropped_total",
			Help: "Fired alerts dropped because the queue to record them was full."}),
		reloadFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "quotehub_alert_rule_reload_failures_total",
			Help: "Loads of alert rules from the user store that failed (retried)."}),
	}
	if reg != nil {
		reg.MustRegister(m.rules, m.fired, m.recordFailures, m.dropped, m.reloadFailures)
	}
	return m
}

func newAlerts(users quotehub.UserStore, bus quotehub.UserBus, timeout time.Duration, log zerolog.Logger, reg prometheus.Registerer) *alerts {
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	return &alerts{
		engine: alert.New(), users: users, bus: bus, log: log, timeout: timeout, m: newAlertMetrics(reg),
		activate: func(string) {},
		loaded:   map[int64]loadedRule{}, byUser: map[string]map[int64]struct{}{}, dirty: map[string]struct{}{},
		all: true, wake: make(chan struct{}, 1), fired: make(chan alert.Fired, firedQueue),
	}
}

// engineRule is r as the engine reads it: move_pct is the engine's move.
func engineRule(r quotehub.AlertRule) alert.Rule {
	kind := alert.Kind(r.Kind)
	if r.Kind == quotehub.AlertMovePct {
		kind = alert.Move
	}
	return alert.Rule{ID: r.ID, User: r.UserID, Symbol: r.Symbol, Kind: kind, Threshold: r.Threshold, Rearm: r.Rearm}
}

// storeKind is the user store's name of an engine kind.
func storeKind(k alert.Kind) string {
	if k == alert.Move {
		return quotehub.AlertMovePct
	}
	return string(k)
}

// Symbols returns the symbols with at least one rule: they stay active
// with no viewer.
func (a *alerts) Symbols() []string { return a.engine.Symbols() }

// rulesChanged marks user's rules for reload (a bus event; never blocks).
func (a *alerts) rulesChanged(ev quotehub.UserEvent) {
	a.mu.Lock()
	a.dirty[ev.User] = struct{}{}
	a.mu.Unlock()
	a.kick()
}

// resync marks every rule for reload: the bus may have lost events.
func (a *alerts) resync() {
	a.mu.Lock()
	a.all = true
	a.mu.Unlock()
	a.kick()
}

func (a *alerts) kick() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// run loads the rules and keeps them current, and records and publishes
// fired alerts, until ctx ends.
func (a *alerts) run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.recordLoop(ctx)
	}()
	retry := time.NewTimer(0)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-a.wake:
		case <-retry.C:
		}
		if !a.reload(ctx) {
			retry.Reset(reloadRetry)
		}
	}
}

// reload applies what is marked: every rule, or the rules of the dirty
// users. It reports false when something failed (it stays marked).
func (a *alerts) reload(ctx context.Context) bool {
	a.mu.Lock()
	all, users := a.all, make([]string, 0, len(a.dirty))
	for u := range a.dirty {
		users = append(users, u)
	}
	a.all = false
	clear(a.dirty)
	a.mu.Unlock()
	ok := true
	fail := func(err error, user string) {
		ok = false
		a.m.reloadFailures.Inc()
		a.log.Warn().Err(err).Str("user", user).Msg("loading alert rules failed; retrying")
		a.mu.Lock()
		if user == "" {
			a.all = true
		} else {
			a.dirty[user] = struct{}{}
		}
		a.mu.Unlock()
	}
	if all {
		rules, err := a.loadAll(ctx)
		if err != nil {
			fail(err, "")
		} else {
			a.apply("", rules)
			a.log.Info().Int("rules", len(rules)).Msg("alert rules loaded")
		}
	}
	for _, u := range users {
		c, cancel := context.WithTimeout(ctx, a.timeout)
		rules, err := a.users.AlertRules(c, u)
		cancel()
		if err != nil {
			fail(err, u)
			continue
		}
		for i := range rules {
			rules[i].UserID = u
		}
		a.apply(u, rules)
	}
	return ok
}

// loadAll pages through every enabled rule.
func (a *alerts) loadAll(ctx context.Context) ([]quotehub.AlertRule, error) {
	const page = 1000
	var out []quotehub.AlertRule
	var after int64
	for {
		c, cancel := context.WithTimeout(ctx, a.timeout)
		rs, err := a.users.EnabledAlertRules(c, after, page)
		cancel()
		if err != nil {
			return nil, err
		}
		out = append(out, rs...)
		if len(rs) < page {
			return out, nil
		}
		after = rs[len(rs)-1].ID
	}
}

// apply makes the engine hold exactly the enabled rules of rules for user
// (every user when user is ""). A rule whose version is already loaded is
// left as it is, so that a reload does not re-arm what fired.
func (a *alerts) apply(user string, rules []quotehub.AlertRule) {
	a.mu.Lock()
	defer a.mu.Unlock()
	keep := map[int64]struct{}{}
	var newSymbols []string
	for _, r := range rules {
		if !r.Enabled || user != "" && r.UserID != user {
			continue
		}
		keep[r.ID] = struct{}{}
		if l, ok := a.loaded[r.ID]; ok && l.version == r.Version && l.user == r.UserID {
			continue
		}
		if err := a.engine.Put(engineRule(r)); err != nil {
			a.log.Warn().Err(err).Int64("rule", r.ID).Msg("skipping an alert rule the engine refuses")
			continue
		}
		if old, ok := a.loaded[r.ID]; ok && old.user != r.UserID {
			delete(a.byUser[old.user], r.ID)
		}
		a.loaded[r.ID] = loadedRule{user: r.UserID, version: r.Version, symbol: r.Symbol}
		if a.byUser[r.UserID] == nil {
			a.byUser[r.UserID] = map[int64]struct{}{}
		}
		a.byUser[r.UserID][r.ID] = struct{}{}
		newSymbols = append(newSymbols, r.Symbol)
	}
	drop := func(id int64) {
		if _, ok := keep[id]; ok {
			return
		}
		l := a.loaded[id]
		a.engine.Remove(id)
		delete(a.loaded, id)
		delete(a.byUser[l.user], id)
		if len(a.byUser[l.user]) == 0 {
			delete(a.byUser, l.user)
		}
	}
	if user == "" {
		for id := range a.loaded {
			drop(id)
		}
	} else {
		for id := range a.byUser[user] {
			drop(id)
		}
	}
	a.m.rules.Set(float64(len(a.loaded)))
	for _, s := range newSymbols {
		a.activate(s)
	}
}

// changed evaluates the changed quotes of symbols this node owns (the
// refresher's write path): it must not block, so what fires is queued.
func (a *alerts) changed(qs []quotehub.Quote) {
	for i := range qs {
		q := &qs[i]
		prev := 0.0
		if q.Has&quotehub.HasPrevClose != 0 {
			prev = q.PrevClose
		}
		for _, f := range a.engine.Evaluate(q.Symbol, q.Price, prev, time.UnixMilli(q.FetchedAt)) {
			a.m.fired.Inc()
			select {
			case a.fired <- f:
			default:
				a.m.dropped.Inc()
				a.log.Warn().Int64("rule", f.Rule.ID).Str("symbol", f.Rule.Symbol).Msg("alert queue full; dropping a fired alert")
			}
		}
	}
}

// takeover sets the rules of a symbol this node starts to refresh from its
// last known quote, without firing.
func (a *alerts) takeover(q quotehub.Quote) {
	prev := 0.0
	if q.Has&quotehub.HasPrevClose != 0 {
		prev = q.PrevClose
	}
	a.engine.Seed(q.Symbol, q.Price, prev)
}

// recordLoop records each fired alert in its user's log and publishes it.
func (a *alerts) recordLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case f := <-a.fired:
			a.record(ctx, f)
		}
	}
}

func (a *alerts) record(ctx context.Context, f alert.Fired) {
	fa := quotehub.FiredAlert{
		RuleID: f.Rule.ID, Symbol: f.Rule.Symbol, Kind: storeKind(f.Rule.Kind), Threshold: f.Rule.Threshold,
		Direction: f.Direction, Price: f.Price, PrevClose: f.PrevClose, Time: f.At.UTC(),
	}
	a.mu.Lock()
	skip := !a.downAt.IsZero() && time.Since(a.downAt) < recordBackoff
	a.mu.Unlock()
	if !skip {
		c, cancel := context.WithTimeout(ctx, a.timeout)
		rec, err := a.users.AppendFiredAlert(c, f.Rule.User, fa)
		cancel()
		if err == nil {
			fa = rec
		} else {
			skip = true
			a.mu.Lock()
			a.downAt = time.Now()
			a.mu.Unlock()
			a.log.Warn().Err(err).Int64("rule", f.Rule.ID).Msg("recording a fired alert failed; pushing it without an id")
		}
	}
	if skip {
		a.m.recordFailures.Inc()
	} else {
		a.mu.Lock()
		a.downAt = time.Time{}
		a.mu.Unlock()
	}
	data, _ := json.Marshal(fa)
	c, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	if err := a.bus.PublishUser(c, quotehub.UserEvent{User: f.Rule.User, Kind: quotehub.UserAlertFired, Data: data}); err != nil {
		a.log.Warn().Err(err).Int64("rule", f.Rule.ID).Msg("publishing a fired alert failed")
	}
}
