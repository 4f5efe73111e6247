package web_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"quotehub"
	"quotehub/store/sqlite"
	"quotehub/store/sqlstore"
	"quotehub/web"
)

// heldLog is a user store whose first FiredAlerts waits until released,
// so that a test can push live alerts while a stream replays.
type heldLog struct {
	quotehub.UserStore
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (h *heldLog) FiredAlerts(ctx context.Context, user string, after int64, limit int) ([]quotehub.FiredAlert, error) {
	h.once.Do(func() {
		close(h.entered)
		<-h.release
	})
	return h.UserStore.FiredAlerts(ctx, user, after, limit)
}

// readEvent reads one SSE event (skipping comments): its event, id and
// data lines.
func (s *sseStream) readEvent(t *testing.T) (event, id, data string) {
	t.Helper()
	_ = s.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		line, err := s.body.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the stream: %v", err)
		}
		line = strings.TrimSuffix(line, "\n")
		switch k, v, _ := strings.Cut(line, ": "); {
		case line == "" && (event != "" || data != ""):
			return event, id, data
		case line == "" || strings.HasPrefix(line, ":") || k == "retry":
		case k == "event":
			event = v
		case k == "id":
			id = v
		case k == "data":
			data = v
		default:
			t.Fatalf("unexpected line %q", line)
		}
	}
}

// TestEventsReplayThenLive: a stream reconnecting with Last-Event-ID 1
// gets 2 and 3 from the log and then what arrived live while it read the
// log (4, and 3 again, which it skips), in id order, each once; an alert
// without an id (not recorded) goes out without an SSE id; another user's
// alerts never reach it.
func TestEventsReplayThenLive(t *testing.T) {
	dir := t.TempDir()
	st, err := sqlite.Open(context.Background(), dir, sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	log := &heldLog{UserStore: st, entered: make(chan struct{}), release: make(chan struct{})}
	n := startNode(t, func(o *web.Options) {
		o.Verifier = tokens{"t-alice": "alice", "t-bob": "bob"}
		o.Users = log
	})
	at := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	var recorded []quotehub.FiredAlert
	for i := range 3 {
		a, err := st.AppendFiredAlert(context.Background(), "alice", quotehub.FiredAlert{
			RuleID: 7, Symbol: "KRW-BTC", Kind: quotehub.AlertAbove, Threshold: 100, Direction: "up", Price: 100 + float64(i), Time: at})
		if err != nil {
			t.Fatal(err)
		}
		recorded = append(recorded, a)
	}
	s := openStream(t, n, "/v1/me/events", "Authorization: Bearer t-alice\r\nLast-Event-ID: 1\r\n")
	if s.resp.StatusCode != 200 {
		t.Fatalf("status %d", s.resp.StatusCode)
	}
	<-log.entered // the stream reads the log; live alerts arrive meanwhile
	live := quotehub.FiredAlert{ID: 4, RuleID: 7, Symbol: "KRW-BTC", Kind: quotehub.AlertAbove, Threshold: 100, Direction: "up", Price: 104, Time: at}
	n.srv.PushAlert("alice", live)
	n.srv.PushAlert("alice", recorded[2]) // the bus may deliver what the log also holds
	n.srv.PushAlert("bob", quotehub.FiredAlert{ID: 9, RuleID: 8, Symbol: "AAPL", Kind: quotehub.AlertBelow, Threshold: 1, Price: 1, Time: at})
	close(log.release)

	type msg struct {
		ID     int64   `json:"id"`
		RuleID int64   `json:"rule_id"`
		Price  float64 `json:"price"`
		At     int64   `json:"at"`
	}
	next := func() (string, msg) {
		ev, id, data := s.readEvent(t)
		if ev != "alert" {
			t.Fatalf("event %q: %s", ev, data)
		}
		var m msg
		if err := json.Unmarshal([]byte(data), &m); err != nil {
			t.Fatal(err)
		}
		return id, m
	}
	for _, want := range []int64{2, 3, 4} {
		id, m := next()
		if m.ID != want || id != strconv.FormatInt(want, 10) || m.RuleID != 7 || m.At != at.UnixMilli() {
			t.Fatalf("got id %q %+v, want alert %d", id, m, want)
		}
	}
	n.srv.PushAlert("alice", quotehub.FiredAlert{RuleID: 7, Symbol: "KRW-BTC", Kind: quotehub.AlertAbove, Threshold: 100, Direction: "up", Price: 105, Time: at})
	n.srv.PushAlert("alice", live) // already sent
	n.srv.PushAlert("alice", quotehub.FiredAlert{ID: 5, RuleID: 7, Symbol: "KRW-BTC", Kind: quotehub.AlertAbove, Threshold: 100, Direction: "up", Price: 106, Time: at})
	if id, m := next(); id != "" || m.ID != 0 || m.Price != 105 {
		t.Fatalf("an unrecorded alert: id %q %+v, want no id", id, m)
	}
	if id, m := next(); id != "5" || m.ID != 5 {
		t.Fatalf("after the unrecorded one: id %q %+v, want alert 5 (4 is not sent twice)", id, m)
	}
}
