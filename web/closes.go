package web

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// closes counts the connections the node ends, by transport and the close
// code it sent (a WebSocket's close frame; for SSE, the code the hub ended
// the stream with), and logs one access line per ended connection.
type closes struct {
	total  *prometheus.CounterVec
	access zerolog.Logger // sampled: at most accessBurst lines a second
}

// accessBurst is how many access lines (requests and ended connections)
// are logged per second at most; the rest are dropped when busy.
const accessBurst = 50

func newCloses(reg prometheus.Registerer, log zerolog.Logger) *closes {
	c := &closes{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quotehub_closes_total",
			Help: "Connections the node closed, by transport and close code sent (1001 shutdown, 1007 invalid UTF-8, 1008 policy, 1009 too big, 1013 over the connection limit, 4000 slow consumer, 1002 protocol error, ...).",
		}, []string{"transport", "code"}),
		access: log.Sample(&zerolog.BurstSampler{Burst: accessBurst, Period: time.Second}),
	}
	reg.MustRegister(c.total)
	return c
}

// closeRecord is what one connection reports when it ends: the first close
// code sent counts, once.
type closeRecord struct {
	c         *closes
	transport string
	started   time.Time
	code      atomic.Int32
}

// init starts the record of a connection of transport; it lives inside
// the connection's transport, so it costs no allocation of its own.
func (r *closeRecord) init(c *closes, transport string) {
	r.c, r.transport, r.started = c, transport, time.Now()
}

// sent records that the node closed the connection with code; only the
// first code of a connection counts.
func (r *closeRecord) sent(code int) {
	if r.c == nil { // a transport made by a test without a server
		return
	}
	if r.code.CompareAndSwap(0, int32(code)) {
		r.c.total.WithLabelValues(r.transport, strconv.Itoa(code)).Inc()
	}
}

// ended logs the connection's access line: its transport, how long it
// lived and the code the node closed it with (0: the peer left first).
func (r *closeRecord) ended(requestID, session string) {
	if r.c == nil {
		return
	}
	r.c.access.Info().Str("transport", r.transport).Str("request_id", requestID).Str("session", session).
		Dur("duration", time.Since(r.started)).Int32("close_code", r.code.Load()).Msg("connection closed")
}
