package hub_test

import (
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
