package redis_test

import (
	"testing"

	"quotehub/store/redis/redistest"
)

// TestOnCluster runs the store suites again on a real 3-master Redis
// Cluster on loopback (started from the installed Redis for this test):
// every key, script and pipeline must respect hash slots, and sharded
// pub/sub must subscribe each channel on the master serving its slot.
func TestOnCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster")
	}
	onCluster = redistest.StartCluster(t, 3, 0)
	defer func() { onCluster = nil }()
	for _, tc := range []struct {
		name string
		run  func(*testing.T)
	}{
		{"Cache", TestCacheConformance},
		{"ActiveSet", TestActiveSetConformance},
		{"Bus", TestBusConformance},
		{"BusShardsAcrossMasters", TestBusShardsAcrossMasters},
		{"BusResyncsOnSubscribe", TestBusResyncsOnSubscribe},
		{"FetchLock", TestFetchLock},
		{"OwnershipSharesSlotsAndFailsOver", TestOwnershipSharesSlotsAndFailsOver},
		{"OwnershipStopsTrustingUnrenewedLeases", TestOwnershipStopsTrustingUnrenewedLeases},
		{"OwnershipCleanStopHandsOverAtOnce", TestOwnershipCleanStopHandsOverAtOnce},
		{"OwnershipNoticesLostState", TestOwnershipNoticesLostState},
		{"OwnershipTakesADeadNodesSlotsAtExpiry", TestOwnershipTakesADeadNodesSlotsAtExpiry},
	} {
		t.Run(tc.name, tc.run)
	}
}
