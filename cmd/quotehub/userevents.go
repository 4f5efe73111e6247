package main

import (
	"context"
	"sync"
	"time"

	"quotehub"
	"quotehub/hub"
	"quotehub/store/usercache"
	"quotehub/web"
)

// userEvents dispatches the user bus's events by kind to what handles
// them on this node (following lists, delivering alerts), and tells them
// when events may have been lost.
type userEvents struct {
	mu       sync.RWMutex
	handlers map[string][]func(quotehub.UserEvent)
	resyncs  []func()
	states   []func(up bool)
}

// on registers f for events of kind; f must not block.
func (d *userEvents) on(kind string, f func(quotehub.UserEvent)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.handlers == nil {
		d.handlers = map[string][]func(quotehub.UserEvent){}
	}
	d.handlers[kind] = append(d.handlers[kind], f)
}

// onResync registers f, called when the bus may have lost events (its
// subscription was re-made): f re-reads what its sessions follow.
func (d *userEvents) onResync(f func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.resyncs = append(d.resyncs, f)
}

// onState registers f, told when the bus goes down (events may be lost
// from then on) and comes up again, before the resync functions run.
func (d *userEvents) onState(f func(up bool)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.states = append(d.states, f)
}

func (d *userEvents) state(up bool) {
	d.mu.RLock()
	fs := d.states
	d.mu.RUnlock()
	for _, f := range fs {
		f(up)
	}
}

func (d *userEvents) deliver(ev quotehub.UserEvent) {
	d.mu.RLock()
	hs := d.handlers[ev.Kind]
	d.mu.RUnlock()
	for _, h := range hs {
		h(ev)
	}
}

func (d *userEvents) resync() {
	d.mu.RLock()
	fs := d.resyncs
	d.mu.RUnlock()
	for _, f := range fs {
		f()
	}
}

// followLists makes the sessions of this node that follow a user's lists
// re-read them when the user edits one (on any node), and every followed
// list when the bus may have lost events. The store is read off the
// bus's delivery goroutine, each read within timeout.
func followLists(h *hub.Hub, evts *userEvents, timeout time.Duration) {
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	refollow := func(user, list string) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		h.Refollow(ctx, user, list)
	}
	evts.on(quotehub.UserListsChanged, func(ev quotehub.UserEvent) {
		go refollow(ev.User, web.ListOfEvent(ev))
	})
	evts.onResync(func() {
		for _, u := range h.Users() {
			go refollow(u, "")
		}
	})
}

// cacheHoldings keeps the portfolio cache true to the store: a list
// event naming the portfolio (or every list) drops the user's entry
// before any other handler re-reads it; a resync drops every entry; while
// the bus is down the cache is bypassed. Register it before followLists.
func cacheHoldings(c *usercache.Store, evts *userEvents) {
	evts.on(quotehub.UserListsChanged, func(ev quotehub.UserEvent) {
		if l := web.ListOfEvent(ev); l == "" || l == hub.PortfolioList {
			c.Invalidate(ev.User)
		}
	})
	evts.onState(func(up bool) {
		if up {
			c.Resume()
		} else {
			c.Suspend()
		}
	})
	evts.onResync(c.Clear)
}
