package redis

import (
	"fmt"
	"testing"
)

// Nodes that see the same free slots and holdings assign every free slot to
// exactly one of them, fill the emptiest first, and end up even.
func TestAssignFree(t *testing.T) {
	cases := []struct {
		name   string
		free   []int
		counts map[string]int
	}{
		{"a dead node's slots over two survivors", seq(43, 64), map[string]int{"a": 21, "b": 22}},
		{"everything free (a flushed Redis)", seq(0, 64), map[string]int{"a": 0, "b": 0, "c": 0}},
		{"a newcomer gets released slots", seq(0, 10), map[string]int{"a": 27, "b": 27, "c": 0}},
		{"one node", seq(0, 5), map[string]int{"solo": 3}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			owner := map[int]string{}
			after := map[string]int{}
			for n, c := range tc.counts {
				mine := assignFree(tc.free, tc.counts, n)
				for _, s := range mine {
					if o, dup := owner[s]; dup {
						t.Fatalf("slot %d assigned to %s and %s", s, o, n)
					}
					owner[s] = n
				}
				after[n] = c + len(mine)
			}
			if len(owner) != len(tc.free) {
				t.Fatalf("%d of %d free slots assigned", len(owner), len(tc.free))
			}
			lo := 1 << 30
			for _, c := range after {
				lo = min(lo, c)
			}
			// The emptiest fill first: a node that got a slot ends at most
			// one above the emptiest.
			for _, n := range owner {
				if after[n] > lo+1 {
					t.Errorf("%s got free slots but ends with %d while another has %d: %v", n, after[n], lo, after)
				}
			}
			t.Logf("%v", after)
		})
	}
	// The same view gives the same answer whatever the map order.
	counts := map[string]int{"a": 5, "b": 5, "c": 5, "d": 5}
	first := fmt.Sprint(assignFree(seq(0, 40), counts, "c"))
	for range 20 {
		if got := fmt.Sprint(assignFree(seq(0, 40), counts, "c")); got != first {
			t.Fatalf("assignment changed between calls: %s then %s", first, got)
		}
	}
}

func seq(lo, hi int) []int {
	var out []int
	for i := lo; i < hi; i++ {
		out = append(out, i)
	}
	return out
}
