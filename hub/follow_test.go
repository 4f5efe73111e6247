package hub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"quotehub"
	"quotehub/hub"
	"quotehub/internal/poll"
)

// fakeLists is a hub.Lists over lists the test sets; "portfolio" values
// as the sum of its symbols' prices.
type fakeLists struct {
	mu    sync.Mutex
	lists map[string]hub.List // by user + "/" + name
}

func (f *fakeLists) set(user, name string, version int64, syms ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lists == nil {
		f.lists = map[string]hub.List{}
	}
	l := hub.List{Symbols: syms, Version: version}
	if name == hub.PortfolioList {
		l.Value = func(quote func(string) (quotehub.Quote, bool)) []byte {
			sum := 0.0
			for _, s := range syms {
				if q, ok := quote(s); ok {
					sum += q.Price
				}
			}
			return []byte(fmt.Sprintf(`{"type":"portfolio","sum":%g}`, sum))
		}
	}
	f.lists[user+"/"+name] = l
}

func (f *fakeLists) List(_ context.Context, user, name string) (hub.List, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.lists[user+"/"+name]
	if !ok {
		return hub.List{}, quotehub.Errorf(quotehub.ENotFound, "no list %s", name)
	}
	return l, nil
}

// aliceOn starts a hub over lists with one session, alice's.
func aliceOn(t *testing.T, lists hub.Lists) (*env, *recorder, *hub.Client) {
	t.Helper()
	e := newEnv(t, func(o *hub.Options) { o.Lists = lists })
	r := newRecorder()
	c := e.connect(t, r)
	c.SetUser(quotehub.Principal{UserID: "alice"}, nil)
	return e, r, c
}

func framesOf(t *testing.T, r *recorder, typ string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, f := range r.frames(t) {
		if f["type"] == typ {
			out = append(out, f)
		}
	}
	return out
}

// TestValuationConflated: while a session's writer is stuck, many batches
// touching its portfolio leave one valuation, at the newest prices; a
// batch that touches none of its symbols values nothing.
func TestValuationConflated(t *testing.T) {
	lists := &fakeLists{}
	lists.set("alice", hub.PortfolioList, 1, "KRW-BTC", "KRW-ETH")
	e := newEnv(t, func(o *hub.Options) { o.Lists = lists })
	r := newRecorder()
	gate := make(chan struct{})
	r.setGate(gate)
	c := e.connect(t, r)
	c.SetUser(quotehub.Principal{UserID: "alice"}, nil)
	c.SendControl([]byte(`{"type":"first"}`))
	<-r.writes // the writer is stuck writing "first"
	if err := c.Follow(context.Background(), json.RawMessage(`1`), []string{hub.PortfolioList}); err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= 100; seq++ {
		e.hub.Publish([]quotehub.Quote{quote("KRW-BTC", seq, float64(seq)), quote("KRW-ETH", seq, 1000)})
	}
	r.setGate(nil)
	close(gate)
	e.hub.Publish([]quotehub.Quote{quote("AAPL", 1, 5)}) // not held: no valuation
	c.SendControl([]byte(`{"type":"marker"}`))
	poll.Until(t, 5*time.Second, "the marker", func() bool { return len(framesOf(t, r, "marker")) == 1 })
	// The follow's first valuation and the hundred changes behind the
	// stuck write come out as one valuation, at the newest prices.
	vs := framesOf(t, r, "portfolio")
	if len(vs) != 1 || vs[0]["sum"] != float64(1100) {
		t.Fatalf("valuations %v, want one at the newest prices (1100)", vs)
	}
}

// TestRefollow: a re-read adds and drops symbols with frames naming the
// list, ignores an older version, keeps symbols subscribed by name, and
// drops a list that is gone.
func TestRefollow(t *testing.T) {
	lists := &fakeLists{}
	lists.set("alice", "watchlist:a", 1, "KRW-BTC", "KRW-ETH")
	e, r, c := aliceOn(t, lists)
	ctx := context.Background()
	if err := c.Subscribe(ctx, nil, []string{"KRW-ETH"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Follow(ctx, nil, []string{"watchlist:a"}); err != nil {
		t.Fatal(err)
	}
	lists.set("alice", "watchlist:a", 2, "AAPL")
	e.hub.Refollow(ctx, "alice", "watchlist:a")
	lists.set("alice", "watchlist:a", 1, "MSFT") // an older read: ignored
	e.hub.Refollow(ctx, "alice", "")
	e.hub.Refollow(ctx, "bob", "watchlist:a") // no session of bob's
	poll.Until(t, 5*time.Second, "the list's frames", func() bool { return len(framesOf(t, r, "unsubscribed")) == 1 })
	subs, unsubs := framesOf(t, r, "subscribed"), framesOf(t, r, "unsubscribed")
	if len(subs) != 3 || fmt.Sprint(subs[2]["symbols"]) != "[AAPL]" || subs[2]["list"] != "watchlist:a" {
		t.Fatalf("subscribed frames %v", subs)
	}
	if fmt.Sprint(unsubs[0]["symbols"]) != "[KRW-BTC]" {
		t.Fatalf("unsubscribed frames %v (KRW-ETH was subscribed by name)", unsubs)
	}
	// Unsubscribing by name a symbol the list holds keeps it.
	if err := c.Unsubscribe(nil, []string{"AAPL"}); err != nil {
		t.Fatal(err)
	}
	if got := e.hub.Subscribers("AAPL"); got != 1 {
		t.Errorf("AAPL, held by a followed list, has %d subscribers after an unsubscribe, want 1", got)
	}
	lists.mu.Lock()
	delete(lists.lists, "alice/watchlist:a")
	lists.mu.Unlock()
	e.hub.Refollow(ctx, "alice", "watchlist:a")
	if got := c.Following(); len(got) != 0 {
		t.Errorf("still following %v after the list went", got)
	}
	if got := []int{e.hub.Subscribers("AAPL"), e.hub.Subscribers("KRW-ETH")}; !slices.Equal(got, []int{0, 1}) {
		t.Errorf("subscribers of AAPL, KRW-ETH = %v, want [0 1]", got)
	}
}

// gatedLists holds its first read after it has its answer, until released:
// a follow that has read a list but not yet applied it.
type gatedLists struct {
	*fakeLists
	gated   atomic.Bool
	read    chan struct{}
	release chan struct{}
}

func (g *gatedLists) List(ctx context.Context, user, name string) (hub.List, error) {
	l, err := g.fakeLists.List(ctx, user, name)
	if g.gated.CompareAndSwap(true, false) {
		g.read <- struct{}{}
		<-g.release
	}
	return l, err
}

// TestFollowRacesADeletion: a list deleted between a follow's read of it
// and the follow taking effect is not left followed as it was read. The
// re-read the deletion asks for waits for the follow, then finds the list
// gone and drops it, with an unsubscribed frame.
func TestFollowRacesADeletion(t *testing.T) {
	lists := &gatedLists{fakeLists: &fakeLists{}, read: make(chan struct{}), release: make(chan struct{})}
	lists.set("alice", "watchlist:a", 1, "KRW-BTC", "KRW-ETH")
	e, r, c := aliceOn(t, lists)
	ctx := context.Background()

	lists.gated.Store(true)
	followed := make(chan error, 1)
	go func() { followed <- c.Follow(ctx, nil, []string{"watchlist:a"}) }()
	<-lists.read // the follow has the list as it was
	lists.mu.Lock()
	delete(lists.lists, "alice/watchlist:a")
	lists.mu.Unlock()
	refollowed := make(chan struct{})
	go func() { e.hub.Refollow(ctx, "alice", "watchlist:a"); close(refollowed) }()
	// A re-read that ends before the follow has taken effect has missed it.
	poll.Until(t, 5*time.Second, "the re-read to end or to wait for the follow", func() bool {
		select {
		case <-refollowed:
			return true
		default:
		}
		return slices.ContainsFunc(poll.Goroutines(""), func(g string) bool { return strings.Contains(g, "hub.(*Client).Following(") })
	})
	close(lists.release)
	if err := <-followed; err != nil {
		t.Fatal(err)
	}
	select {
	case <-refollowed:
	case <-time.After(5 * time.Second):
		t.Fatal("the re-read never ended")
	}
	if got := c.Following(); len(got) != 0 {
		t.Errorf("following %v, a list deleted while the follow read it", got)
	}
	poll.Until(t, 5*time.Second, "the list's unsubscribed frame", func() bool {
		u := framesOf(t, r, "unsubscribed")
		return len(u) == 1 && u[0]["list"] == "watchlist:a" && fmt.Sprint(u[0]["symbols"]) == "[KRW-BTC KRW-ETH]"
	})
	if got := []int{e.hub.Subscribers("KRW-BTC"), e.hub.Subscribers("KRW-ETH")}; !slices.Equal(got, []int{0, 0}) {
		t.Errorf("subscribers of KRW-BTC, KRW-ETH = %v, want [0 0]", got)
	}
}
