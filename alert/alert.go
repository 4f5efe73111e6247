// Package alert evaluates users' price alerts as prices change.
//
// An Engine keeps, for each symbol, its rules in four lists ordered by the
// level at which something happens: armed rules that fire when the price
// rises to their trigger, armed rules that fire when it falls to theirs,
// and fired rules waiting to be re-armed on either side. A price change
// looks only at the first rule of each list, so its cost does not depend on
// how many rules do not fire; each rule that fires or re-arms moves to
// another list once.
//
// Rules live in two spaces: price rules (above, below, cross) compare the
// price with their threshold; move rules compare the change from the
// previous close, in percent.
package alert

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
)

// Kind is what a rule watches for.
type Kind string

const (
	// Above fires when the price rises to or above the threshold.
	Above Kind = "above"
	// Below fires when the price falls to or below the threshold.
	Below Kind = "below"
	// Cross fires each time the price crosses the threshold, either way.
	Cross Kind = "cross"
	// Move fires when the change from the previous close reaches the
	// threshold in percent: up for a positive threshold, down for a
	// negative one.
	Move Kind = "move"
)

// DefaultRearm is the re-arm band when a rule names none: 1 % of its
// threshold.
const DefaultRearm = 0.01

// Rule is one alert of one user.
type Rule struct {
	ID        int64
	User      string
	Symbol    string
	Kind      Kind
	Threshold float64 // a price; for Move, a change in percent (5 = +5 %)
	// Rearm is the hysteresis, a fraction of the threshold (0 to 0.5):
	// after firing, a rule fires again only once the price has gone back
	// beyond threshold × (1 ∓ Rearm), so a price hovering at the line does
	// not fire again and again. 0 means DefaultRearm.
	Rearm float64
}

// Validate reports what is wrong with r, if anything.
func (r Rule) Validate() error {
	switch {
	case r.Symbol == "":
		return errors.New("a rule needs a symbol")
	case r.Kind != Above && r.Kind != Below && r.Kind != Cross && r.Kind != Move:
		return fmt.Errorf("kind %q: want above, below, cross or move", r.Kind)
	case math.IsNaN(r.Threshold) || math.IsInf(r.Threshold, 0):
		return errors.New("threshold must be a number")
	case r.Kind != Move && r.Threshold <= 0:
		return fmt.Errorf("a price threshold must be positive, not %v", r.Threshold)
	case r.Kind == Move && (r.Threshold == 0 || math.Abs(r.Threshold) > 1000):
		return fmt.Errorf("a move threshold is a non-zero change in percent up to ±1000, not %v", r.Threshold)
	case r.Rearm < 0 || r.Rearm > 0.5 || math.IsNaN(r.Rearm):
		return fmt.Errorf("rearm %v: want a fraction from 0 to 0.5", r.Rearm)
	}
	return nil
}

// Fired is one firing of a rule.
type Fired struct {
	Rule      Rule
	Direction string    // "up" or "down": which way the price went through the line
	Price     float64   // the price that fired it
	PrevClose float64   // the previous close the move was measured from (Move only)
	At        time.Time // when the price was seen
}

// entry is a rule in one of a book's lists, at the level that matters
// there.
type entry struct {
	level float64
	rule  *state
}

// state is a rule and where it is.
type state struct {
	Rule
	space int // price or change
	// list is the list the rule is in now (armedUp, armedDown, rearmUp,
	// rearmDown), or -1 for a cross rule that has not seen a price yet.
	list int
}

const (
	spacePrice = iota
	spaceChange
)

const (
	armedUp   = iota // fire when x ≥ level; ascending
	armedDown        // fire when x ≤ level; descending
	rearmUp          // re-arm when x ≥ level; ascending (a fired Below waiting for the price to rise back)
	rearmDown        // re-arm when x ≤ level; descending (a fired Above waiting for the price to fall back)
	unseen           // a cross rule before its first price
)

// book is one symbol's rules in one space.
type book struct {
	lists  [4][]entry
	unseen []*state
}

// symbolBook is one symbol's rules.
type symbolBook struct {
	mu     sync.Mutex
	spaces [2]book
	rules  map[int64]*state
}

// Engine holds the rules of every symbol. It is safe for concurrent use;
// prices of different symbols are evaluated independently.
type Engine struct {
	mu      sync.RWMutex
	symbols map[string]*symbolBook
	bySym   map[int64]string // rule id → symbol
}

// New returns an empty engine.
func New() *Engine {
	return &Engine{symbols: map[string]*symbolBook{}, bySym: map[int64]string{}}
}

// Symbols returns the symbols that have at least one rule: they stay in
// the active set with no viewer.
func (e *Engine) Symbols() []string {
	e.mu.RLock()
	defer e.mu.RUnlock()
	out := make([]string, 0, len(e.symbols))
	for s := range e.symbols {
		out = append(out, s)
	}
	return out
}

// Len returns the number of rules.
func (e *Engine) Len() int {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return len(e.bySym)
}

// Put adds r, or replaces the rule with r's id (re-armed). An added rule
// is armed: if its condition already holds it fires with the next price;
// a cross rule starts at the side of the next price, without firing.
func (e *Engine) Put(r Rule) error {
	if err := r.Validate(); err != nil {
		return err
	}
	if r.Rearm == 0 {
		r.Rearm = DefaultRearm
	}
	e.Remove(r.ID)
	e.mu.Lock()
	sb := e.symbols[r.Symbol]
	if sb == nil {
		sb = &symbolBook{rules: map[int64]*state{}}
		e.symbols[r.Symbol] = sb
	}
	e.bySym[r.ID] = r.Symbol
	sb.mu.Lock() // under e.mu: Remove of the last rule cannot drop this book meanwhile
	e.mu.Unlock()
	defer sb.mu.Unlock()
	st := &state{Rule: r}
	if r.Kind == Move {
		st.space = spaceChange
	}
	sb.rules[r.ID] = st
	b := &sb.spaces[st.space]
	switch {
	case r.Kind == Cross:
		st.list = unseen
		b.unseen = append(b.unseen, st)
	case r.Kind == Above || r.Kind == Move && r.Threshold > 0:
		b.insert(armedUp, r.Threshold, st)
	default:
		b.insert(armedDown, r.Threshold, st)
	}
	return nil
}

// Remove drops the rule with id, if there is one.
func (e *Engine) Remove(id int64) {
	e.mu.Lock()
	sym, ok := e.bySym[id]
	if !ok {
		e.mu.Unlock()
		return
	}
	delete(e.bySym, id)
	sb := e.symbols[sym]
	sb.mu.Lock()
	st := sb.rules[id]
	delete(sb.rules, id)
	b := &sb.spaces[st.space]
	if st.list == unseen {
		b.unseen = slices.DeleteFunc(b.unseen, func(x *state) bool { return x == st })
	} else {
		b.lists[st.list] = slices.DeleteFunc(b.lists[st.list], func(x entry) bool { return x.rule == st })
	}
	if len(sb.rules) == 0 {
		delete(e.symbols, sym)
	}
	sb.mu.Unlock()
	e.mu.Unlock()
}

// Evaluate applies a price of symbol (and its previous close, for move
// rules; 0 when unknown) and returns the rules it fires. With no rule at
// or past its level it costs a map lookup and a few comparisons.
func (e *Engine) Evaluate(symbol string, price, prevClose float64, at time.Time) []Fired {
	e.mu.RLock()
	sb := e.symbols[symbol]
	e.mu.RUnlock()
	if sb == nil || !(price > 0) {
		return nil
	}
	sb.mu.Lock()
	defer sb.mu.Unlock()
	var fired []Fired
	fire := func(st *state, dir string) {
		f := Fired{Rule: st.Rule, Direction: dir, Price: price, At: at}
		if st.space == spaceChange {
			f.PrevClose = prevClose
		}
		fired = append(fired, f)
	}
	sb.spaces[spacePrice].apply(price, fire)
	if prevClose > 0 {
		sb.spaces[spaceChange].apply((price/prevClose-1)*100, fire)
	}
	return fired
}

// Seed sets the state of symbol's rules from its last known price without
// firing: a rule whose condition holds at that price counts as fired
// (another node, or this one before a restart, fired it). A node calls it
// when it starts refreshing a symbol, so a takeover does not fire again
// what the previous owner fired.
func (e *Engine) Seed(symbol string, price, prevClose float64) {
	e.mu.RLock()
	sb := e.symbols[symbol]
	e.mu.RUnlock()
	if sb == nil || !(price > 0) {
		return
	}
	sb.mu.Lock()
	defer sb.mu.Unlock()
	sb.spaces[spacePrice].apply(price, func(*state, string) {})
	if prevClose > 0 {
		sb.spaces[spaceChange].apply((price/prevClose-1)*100, func(*state, string) {})
	}
}

// apply moves the book to value x, calling fire for each rule it fires.
func (b *book) apply(x float64, fire func(*state, string)) {
	// Re-arm first: a rule re-armed by this value cannot fire on it (its
	// re-arm level is beyond its trigger on the other side).
	for l := b.lists[rearmUp]; len(l) > 0 && x >= l[0].level; l = b.lists[rearmUp] {
		st := l[0].rule
		b.lists[rearmUp] = l[1:]
		b.insert(armedDown, st.Threshold, st)
	}
	for l := b.lists[rearmDown]; len(l) > 0 && x <= l[0].level; l = b.lists[rearmDown] {
		st := l[0].rule
		b.lists[rearmDown] = l[1:]
		b.insert(armedUp, st.Threshold, st)
	}
	for l := b.lists[armedUp]; len(l) > 0 && x >= l[0].level; l = b.lists[armedUp] {
		st := l[0].rule
		b.lists[armedUp] = l[1:]
		fire(st, "up")
		b.fired(st, "up")
	}
	for l := b.lists[armedDown]; len(l) > 0 && x <= l[0].level; l = b.lists[armedDown] {
		st := l[0].rule
		b.lists[armedDown] = l[1:]
		fire(st, "down")
		b.fired(st, "down")
	}
	// Cross rules seeing their first value take its side, without firing.
	for _, st := range b.unseen {
		if x >= st.Threshold {
			b.insert(armedDown, st.Threshold, st)
		} else {
			b.insert(armedUp, st.Threshold, st)
		}
	}
	b.unseen = b.unseen[:0]
}

// fired moves a rule that fired: a cross rule is armed for the other way
// at once, but beyond the band (threshold × (1 ∓ Rearm)); the others wait
// in a re-arm list until the value is back beyond the band.
func (b *book) fired(st *state, dir string) {
	band := math.Abs(st.Threshold) * st.Rearm
	switch {
	case st.Kind == Cross && dir == "up":
		b.insert(armedDown, st.Threshold-band, st)
	case st.Kind == Cross:
		b.insert(armedUp, st.Threshold+band, st)
	case dir == "up":
		b.insert(rearmDown, st.Threshold-band, st)
	default:
		b.insert(rearmUp, st.Threshold+band, st)
	}
}

// insert puts st into list at level, keeping the list ordered so that its
// first entry is the next to act: ascending for the "≥" lists, descending
// for the "≤" ones.
func (b *book) insert(list int, level float64, st *state) {
	st.list = list
	l := b.lists[list]
	asc := list == armedUp || list == rearmUp
	i, _ := slices.BinarySearchFunc(l, level, func(e entry, v float64) int {
		switch {
		case e.level == v:
			return 0
		case (e.level < v) == asc:
			return -1
		default:
			return 1
		}
	})
	b.lists[list] = slices.Insert(l, i, entry{level, st})
}
