// Package shard spreads strings (symbols) over a fixed number of shards
// with FNV-1a, without allocating: the registry, the memory cache, the bus
// and the refresh slots all pick a symbol's shard with it.
package shard

// Hash is the 32-bit FNV-1a hash of s.
func Hash(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

// Of returns the shard of s among n shards (n > 0).
func Of(s string, n int) int { return int(Hash(s) % uint32(n)) }
