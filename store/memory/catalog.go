package memory

import (
	"context"
	"sort"
	"strings"

	"quotehub"
)

var _ quotehub.Catalog = (*Catalog)(nil)

// Catalog is an in-process, read-only quotehub.Catalog.
type Catalog struct {
	bySymbol map[string]quotehub.SymbolInfo
	sorted   []quotehub.SymbolInfo
	folded   []string // upper-cased "symbol\x00name" per sorted entry, for search
}

// NewCatalog returns a catalogue of entries. Symbols must be normalised; a
// later duplicate replaces an earlier one.
func NewCatalog(entries []quotehub.SymbolInfo) *Catalog {
	c := &Catalog{bySymbol: make(map[string]quotehub.SymbolInfo, len(entries))}
	for _, e := range entries {
		c.bySymbol[e.Symbol] = e
	}
	c.sorted = make([]quotehub.SymbolInfo, 0, len(c.bySymbol))
	for _, e := range c.bySymbol {
		c.sorted = append(c.sorted, e)
	}
	sort.Slice(c.sorted, func(i, j int) bool { return c.sorted[i].Symbol < c.sorted[j].Symbol })
	c.folded = make([]string, len(c.sorted))
	for i, e := range c.sorted {
		c.folded[i] = strings.ToUpper(e.Symbol + "\x00" + e.Name)
	}
	return c
}

// Len returns the number of entries.
func (c *Catalog) Len() int { return len(c.sorted) }

// Lookup implements quotehub.Catalog.
func (c *Catalog) Lookup(_ context.Context, symbol string) (quotehub.SymbolInfo, bool, error) {
	e, ok := c.bySymbol[symbol]
	return e, ok, nil
}

// Search implements quotehub.Catalog.
func (c *Catalog) Search(_ context.Context, q string, limit int) ([]quotehub.SymbolInfo, error) {
	if limit <= 0 {
		return []quotehub.SymbolInfo{}, nil
	}
	uq := strings.ToUpper(q)
	var prefix, rest []quotehub.SymbolInfo
	for i, e := range c.sorted {
		switch {
		case strings.HasPrefix(e.Symbol, uq):
			prefix = append(prefix, e)
			if len(prefix) >= limit {
				return prefix, nil
			}
		case len(rest) < limit && strings.Contains(c.folded[i], uq):
			rest = append(rest, e)
		}
	}
	out := append(prefix, rest...)
	if len(out) > limit {
		out = out[:limit]
	}
	if out == nil {
		out = []quotehub.SymbolInfo{}
	}
	return out, nil
}
