// Package memory holds the embedded default of every quotehub store
// interface: a cache, a bus, an active set and a catalogue that live in the
// process. A single node needs nothing else; a cluster switches to the Redis
// stores, which pass the same conformance tests.
package memory
