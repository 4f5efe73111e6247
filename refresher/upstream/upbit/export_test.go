package upbit

// Requests returns the number of REST requests sent so far (WebSocket
// handshakes excluded).
func (p *Provider) Requests() int64 { return p.requests.Load() }
