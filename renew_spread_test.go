package navercommerce

import (
	"hash/fnv"
	"testing"
	"time"
)

// A key's renewal point must not move when how it is computed changes: keys renew where
// they always did (FNV-1a of the key's string), and the periodic run asks it of every key
// every minute without allocating.
func TestRenewSpreadIsStableAndFree(t *testing.T) {
	keys := []tokenKey{
		{ClientID: testClientID, Type: "SELF"},
		{ClientID: testClientID, Type: "SELLER", AccountID: "ncp_abc"},
		{ClientID: "other", Type: "SELLER", AccountID: "ncp_한글"},
		{},
	}
	for _, width := range []time.Duration{time.Second, 20 * time.Minute, time.Hour} {
		for _, k := range keys {
			h := fnv.New64a()
			h.Write([]byte(k.String()))
			want := time.Duration(h.Sum64() % uint64(width))
			if got := renewSpread(k, width); got != want {
				t.Errorf("renewSpread(%v) of %q = %v, want %v", width, k, got, want)
			}
		}
	}
	if got := renewSpread(keys[1], 0); got != 0 {
		t.Errorf("renewSpread(0) = %v, want 0", got)
	}
	k := keys[1]
	var sum time.Duration
	if allocs := testing.AllocsPerRun(100, func() { sum += renewSpread(k, renewSpreadWidth) }); allocs != 0 {
		t.Errorf("renewSpread allocates %.0f times per call, want 0", allocs)
	}
}
