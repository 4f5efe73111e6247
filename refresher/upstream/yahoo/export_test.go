package yahoo

// Requests returns the number of HTTP requests sent so far (requests the
// HTTP transport itself retried count once).
func (p *Provider) Requests() int64 { return p.requests.Load() }
