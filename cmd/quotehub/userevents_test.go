package main

import (
	"context"
	"sync"
	"testing"
	"time"

	"quotehub"
	"quotehub/internal/poll"
)

// A user event published on one node reaches the handlers of its kind on
// every node of the cluster, and only those.
func TestUserEventsAcrossNodes(t *testing.T) {
	url, prefix, _ := sharedRedis(t)
	env := map[string]string{"QUOTEHUB_REDIS_URL": url, "QUOTEHUB_REDIS_PREFIX": prefix}
	a, b := startNode(t, env), startNode(t, env)
	var mu sync.Mutex
	var alerts []string
	lists := map[*testNode][]string{} // by the node that got them
	for _, n := range []*testNode{a, b} {
		n.stores.userEvts.on(quotehub.UserListsChanged, func(ev quotehub.UserEvent) {
			mu.Lock()
			lists[n] = append(lists[n], ev.User)
			mu.Unlock()
		})
	}
	b.stores.userEvts.on(quotehub.UserAlertFired, func(ev quotehub.UserEvent) {
		mu.Lock()
		alerts = append(alerts, ev.User)
		mu.Unlock()
	})
	poll.Until(t, 30*time.Second, "both nodes to get a list change", func() bool {
		_ = a.stores.userBus.PublishUser(context.Background(), quotehub.UserEvent{User: "alice", Kind: quotehub.UserListsChanged})
		mu.Lock()
		defer mu.Unlock()
		// Both buses are subscribed once each node got one: the alert
		// below is not sent before b listens.
		return len(lists[a]) > 0 && len(lists[b]) > 0 && lists[a][0] == "alice" && lists[b][0] == "alice"
	})
	if err := a.stores.userBus.PublishUser(context.Background(), quotehub.UserEvent{User: "bob", Kind: quotehub.UserAlertFired}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, "the alert on b", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(alerts) == 1 && alerts[0] == "bob"
	})
}

func TestUserEventsSingleNode(t *testing.T) {
	n := startNode(t, nil)
	got := make(chan string, 1)
	n.stores.userEvts.on(quotehub.UserRulesChanged, func(ev quotehub.UserEvent) { got <- ev.User })
	n.stores.userEvts.on(quotehub.UserListsChanged, func(quotehub.UserEvent) { t.Error("a rules event reached the lists handler") })
	if err := n.stores.userBus.PublishUser(context.Background(), quotehub.UserEvent{User: "carol", Kind: quotehub.UserRulesChanged}); err != nil {
		t.Fatal(err)
	}
	if u := <-got; u != "carol" {
		t.Errorf("got %q", u)
	}
}
