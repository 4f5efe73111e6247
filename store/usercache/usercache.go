// Package usercache keeps recently read portfolios of a user store in
// memory, so that a valued read (GET /v1/me/portfolio, a session that
// starts following its portfolio) costs no store round trip.
//
// Correctness comes before hits. An entry is dropped when the user bus
// says the user's portfolio changed (on any node: Invalidate), when this
// node writes it, and all entries are dropped when the bus may have lost
// events. While the bus is down (Suspend) the cache is bypassed: every
// read goes to the store and nothing is kept, until Resume. A read that
// raced with an invalidation is not kept: each entry is filled only if no
// invalidation of its user (or a stripe of users) happened since the
// read started, so an event that arrived during a store read cannot be
// overtaken by the older holdings that read returns.
package usercache

import (
	"container/list"
	"context"
	"hash/maphash"
	"slices"
	"sync"

	"quotehub"
)

// DefaultSize is the number of portfolios kept when none is configured.
const DefaultSize = 10000

// stripes is how many invalidation counters fills are checked against.
const stripes = 256

// Store is a quotehub.UserStore whose Portfolio reads are cached; every
// other method goes to the wrapped store. Build it with New.
type Store struct {
	quotehub.UserStore

	seed maphash.Seed
	size int

	mu    sync.Mutex
	live  bool                     // the bus delivers: entries may be served
	lru   *list.List               // of *entry, most recent first
	byKey map[string]*list.Element // user → element of lru
	gen   [stripes]uint64          // invalidations, by stripe of user
	epoch uint64                   // Suspend, Resume and Clear calls

	stats Stats
}

// Stats counts the cache's reads.
type Stats struct {
	Hits, Misses, Bypassed uint64
}

type entry struct {
	user string
	p    quotehub.Portfolio
}

// New returns st with its portfolios cached, at most size of them (least
// recently read dropped first; size ≤ 0 is DefaultSize). live says
// whether the cache may serve from the start: true for a bus that loses
// nothing (a single node's), false for one that must first report it is
// up (Resume).
func New(st quotehub.UserStore, size int, live bool) *Store {
	if size <= 0 {
		size = DefaultSize
	}
	return &Store{UserStore: st, seed: maphash.MakeSeed(), size: size, live: live,
		lru: list.New(), byKey: map[string]*list.Element{}}
}

func (s *Store) stripe(user string) int {
	return int(maphash.String(s.seed, user) % stripes)
}

// Portfolio implements quotehub.UserStore: the cached portfolio when the
// cache is live and holds it, else the store's (kept for the next read
// unless an invalidation happened meanwhile).
func (s *Store) Portfolio(ctx context.Context, user string) (quotehub.Portfolio, error) {
	i := s.stripe(user)
	s.mu.Lock()
	if !s.live {
		s.stats.Bypassed++
		s.mu.Unlock()
		return s.UserStore.Portfolio(ctx, user)
	}
	if el := s.byKey[user]; el != nil {
		s.lru.MoveToFront(el)
		p := clone(el.Value.(*entry).p)
		s.stats.Hits++
		s.mu.Unlock()
		return p, nil
	}
	s.stats.Misses++
	gen, epoch := s.gen[i], s.epoch
	s.mu.Unlock()

	p, err := s.UserStore.Portfolio(ctx, user)
	if err != nil {
		return p, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.live || s.gen[i] != gen || s.epoch != epoch || s.byKey[user] != nil {
		return p, nil
	}
	s.byKey[user] = s.lru.PushFront(&entry{user: user, p: clone(p)})
	for s.lru.Len() > s.size {
		last := s.lru.Back()
		s.lru.Remove(last)
		delete(s.byKey, last.Value.(*entry).user)
	}
	return p, nil
}

// PutPortfolio implements quotehub.UserStore; the user's entry is dropped.
func (s *Store) PutPortfolio(ctx context.Context, user string, p quotehub.Portfolio, ifVersion int64) (quotehub.Portfolio, error) {
	defer s.Invalidate(user)
	return s.UserStore.PutPortfolio(ctx, user, p, ifVersion)
}

// AddTrade implements quotehub.UserStore; the user's entry is dropped.
func (s *Store) AddTrade(ctx context.Context, user string, t quotehub.Trade, ifVersion int64) (quotehub.Portfolio, quotehub.Trade, error) {
	defer s.Invalidate(user)
	return s.UserStore.AddTrade(ctx, user, t, ifVersion)
}

// Invalidate drops the cached portfolio of user: it changed (a list
// event of the user bus, or a write on this node).
func (s *Store) Invalidate(user string) {
	i := s.stripe(user)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen[i]++
	if el := s.byKey[user]; el != nil {
		s.lru.Remove(el)
		delete(s.byKey, user)
	}
}

// Clear drops every entry: the bus may have lost events.
func (s *Store) Clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clearLocked()
}

// Suspend drops every entry and bypasses the cache until Resume: the bus
// is down, so a change made on another node would go unnoticed.
func (s *Store) Suspend() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.live = false
	s.clearLocked()
}

// Resume serves from the cache again, starting empty: the bus is up.
func (s *Store) Resume() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.live = true
	s.clearLocked()
}

func (s *Store) clearLocked() {
	s.epoch++
	s.lru.Init()
	clear(s.byKey)
}

// Len returns the number of portfolios held.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lru.Len()
}

// Stats returns the counts of reads so far.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// clone copies p's holdings, so that no caller shares the cached slice.
func clone(p quotehub.Portfolio) quotehub.Portfolio {
	p.Holdings = slices.Clone(p.Holdings)
	return p
}
