package resilient

// State returns the breaker's state: StateClosed, StateOpen or
// StateHalfOpen. An open breaker whose period has ended reports (and
// becomes) half-open, as the next Fetch would find it.
func (w *Provider) State() string {
	w.mu.Lock()
	ts := w.advance(w.opts.Now())
	s := w.state
	w.unlockAndNotify(ts)
	return s
}
