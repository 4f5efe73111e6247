// Package quotehub is the domain of the quotehub price hub: quotes, symbols,
// error codes, market calendars and the small interfaces that connect the
// parts (Cache, Bus, ActiveSet, Catalog, Provider).
//
// It imports no third-party library. The hub, refresher, store and web
// packages depend on it; only cmd/quotehub wires concrete implementations
// together.
package quotehub
