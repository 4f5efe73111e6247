package hub

import "sync"

// userIndex finds the live sessions of a user on this node, for what
// concerns one user rather than one symbol: a list they follow changed, an
// alert fired.
type userIndex struct {
	mu sync.RWMutex
	m  map[string]map[*Client]struct{}
}

func (x *userIndex) add(user string, c *Client) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.m == nil {
		x.m = map[string]map[*Client]struct{}{}
	}
	s := x.m[user]
	if s == nil {
		s = map[*Client]struct{}{}
		x.m[user] = s
	}
	s[c] = struct{}{}
}

func (x *userIndex) remove(user string, c *Client) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if s := x.m[user]; s != nil {
		delete(s, c)
		if len(s) == 0 {
			delete(x.m, user)
		}
	}
}

// ForUser calls f for each live session of user on this node (none for an
// empty user). f must not block: it runs under the index's read lock.
func (h *Hub) ForUser(user string, f func(*Client)) {
	if user == "" {
		return
	}
	h.users.mu.RLock()
	defer h.users.mu.RUnlock()
	for c := range h.users.m[user] {
		f(c)
	}
}

// Users returns the users with at least one live session on this node.
func (h *Hub) Users() []string {
	h.users.mu.RLock()
	defer h.users.mu.RUnlock()
	out := make([]string, 0, len(h.users.m))
	for u := range h.users.m {
		out = append(out, u)
	}
	return out
}
