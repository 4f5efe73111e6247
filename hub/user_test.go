package hub_test

import (
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"quotehub"
	"quotehub/hub"
)

// TestSessionUser: a session carries the principal it was opened with,
// the welcome frame names it, and the expiry callback runs when the token
// expires — not before, and not after the session closed.
func TestSessionUser(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil)
		r := newRecorder()
		c := e.connect(t, r)
		if _, ok := c.User(); ok {
			t.Fatal("an anonymous session has a user")
		}
		expired := make(chan struct{})
		c.SetUser(quotehub.Principal{UserID: "alice", Expires: time.Now().Add(time.Minute)}, func() { close(expired) })
		if p, ok := c.User(); !ok || p.UserID != "alice" {
			t.Fatalf("User() = %+v, %v", p, ok)
		}
		c.SendControl(c.WelcomeFrame())
		synctest.Wait()
		if f := r.frames(t); len(f) != 1 || f[0]["user"] != "alice" {
			t.Fatalf("welcome %v", f)
		}
		time.Sleep(59 * time.Second)
		synctest.Wait()
		select {
		case <-expired:
			t.Fatal("expired before the token's exp")
		default:
		}
		time.Sleep(2 * time.Second)
		<-expired

		// A session that closed first is not called back.
		c2 := e.hub.NewClient(newRecorder(), "sse")
		called := false
		c2.SetUser(quotehub.Principal{UserID: "bob", Expires: time.Now().Add(time.Second)}, func() { called = true })
		c2.Close()
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if called {
			t.Error("the expiry of a closed session ran")
		}
		// A principal without an expiry sets no timer, and replaces the
		// expiry of the one before.
		c3 := e.connect(t, newRecorder())
		c3.SetUser(quotehub.Principal{UserID: "carol", Expires: time.Now().Add(time.Second)}, func() { t.Error("a replaced expiry ran") })
		c3.SetUser(quotehub.Principal{UserID: "carol"}, func() { t.Error("expiry without exp") })
		time.Sleep(time.Hour)
		synctest.Wait()
	})
}

// TestCloseAfterFlush: what was queued before is written, then the writer
// ends with the close code.
func TestCloseAfterFlush(t *testing.T) {
	e := newEnv(t, nil)
	r := newRecorder()
	c := e.hub.NewClient(r, "ws")
	t.Cleanup(c.Close)
	ended := startWriter(c)
	frame := hub.ErrorFrame(nil, quotehub.Errorf(quotehub.EUnauthorized, "The token expired."))
	c.SendControl(frame)
	c.CloseAfterFlush(hub.ClosePolicy, "token expired")
	ce, ok := hub.IsClose(<-ended)
	if !ok || ce.Code != hub.ClosePolicy || ce.Reason != "token expired" {
		t.Fatalf("writer ended with %v, want a 1008 close", ce)
	}
	if f := r.frames(t); len(f) != 1 || f[0]["code"] != quotehub.EUnauthorized {
		t.Fatalf("frames %v, want the error frame before the close", f)
	}
}

// ForUser finds a user's live sessions on this node, and a closed or
// re-assigned session is no longer among them.
func TestForUser(t *testing.T) {
	e := newEnv(t, nil)
	a1, a2, b := e.connect(t, newRecorder()), e.connect(t, newRecorder()), e.connect(t, newRecorder())
	e.connect(t, newRecorder()) // anonymous
	a1.SetUser(quotehub.Principal{UserID: "alice"}, nil)
	a2.SetUser(quotehub.Principal{UserID: "alice"}, nil)
	b.SetUser(quotehub.Principal{UserID: "bob"}, nil)
	sessions := func(user string) map[*hub.Client]bool {
		m := map[*hub.Client]bool{}
		e.hub.ForUser(user, func(c *hub.Client) { m[c] = true })
		return m
	}
	if got := sessions("alice"); len(got) != 2 || !got[a1] || !got[a2] {
		t.Fatalf("alice's sessions: %v", got)
	}
	if got := sessions(""); len(got) != 0 {
		t.Fatalf("the anonymous user has sessions: %v", got)
	}
	a2.Close()
	b.SetUser(quotehub.Principal{UserID: "carol"}, nil) // the same session, another token's user
	if got := sessions("alice"); len(got) != 1 || !got[a1] {
		t.Errorf("alice after a close: %v", got)
	}
	if got := sessions("bob"); len(got) != 0 {
		t.Errorf("bob after his session became carol's: %v", got)
	}
	users := e.hub.Users()
	slices.Sort(users)
	if !slices.Equal(users, []string{"alice", "carol"}) {
		t.Errorf("Users() = %v", users)
	}
	a2.SetUser(quotehub.Principal{UserID: "dave"}, nil) // after Close: ignored
	if got := sessions("dave"); len(got) != 0 {
		t.Errorf("a closed session was indexed: %v", got)
	}
}
