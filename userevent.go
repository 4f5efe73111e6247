package quotehub

import (
	"context"
	"encoding/json"
)

// UserEvent tells every node that something of one user changed, so that
// the user's live sessions, wherever they are connected, follow: a list
// they follow was edited, an alert fired, the alert rules changed.
type UserEvent struct {
	User string          `json:"user"`
	Kind string          `json:"kind"`
	Data json.RawMessage `json:"data,omitempty"`
}

// Kinds of UserEvent.
const (
	UserListsChanged = "lists" // a watchlist or the portfolio changed; Data names which
	UserAlertFired   = "alert" // an alert fired; Data is the recorded alert
	UserRulesChanged = "rules" // the user's alert rules changed
)

// UserBus carries UserEvents to every node, this one included. Delivery is
// at most once (a node that was disconnected from the bus misses what was
// sent meanwhile): implementations call their resync hook when they may
// have missed events, and what matters is also kept where it can be read
// again (the lists in the user store, fired alerts in its log).
type UserBus interface {
	PublishUser(ctx context.Context, ev UserEvent) error
}
