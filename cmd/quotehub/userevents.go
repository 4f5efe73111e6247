package main

import (
	"sync"

	"quotehub"
)

// userEvents dispatches the user bus's events by kind to what handles
// them on this node (following lists, delivering alerts), and tells them
// when events may have been lost.
type userEvents struct {
	mu       sync.RWMutex
	handlers map[string][]func(quotehub.UserEvent)
	resyncs  []func()
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
