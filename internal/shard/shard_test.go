package shard_test

import (
	"fmt"
	"testing"

	"quotehub/internal/shard"
)

func TestHashIsFNV1a(t *testing.T) {
	// Reference values of 32-bit FNV-1a.
	for s, want := range map[string]uint32{"": 0x811c9dc5, "a": 0xe40c292c, "foobar": 0xbf9cf968} {
		if got := shard.Hash(s); got != want {
			t.Errorf("Hash(%q) = %#x, want %#x", s, got, want)
		}
	}
}

func TestOfSpreadsSymbols(t *testing.T) {
	const n, shards = 64000, 64
	counts := make([]int, shards)
	for i := range n {
		s := shard.Of(fmt.Sprintf("SYN-%06d", i), shards)
		if s < 0 || s >= shards {
			t.Fatalf("shard %d out of range", s)
		}
		counts[s]++
	}
	for i, c := range counts {
		if c < n/shards/2 || c > n/shards*2 {
			t.Errorf("shard %d got %d of %d symbols", i, c, n)
		}
	}
}
