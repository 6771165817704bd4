package core

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// A key Naver issued a token to counts in the automatic budget for a token's life (README:
// "30 + 2 per token in use, that is per key Naver issued a token to within the last 3
// hours"), also when the token lived seconds: in a crash loop, the sweep a refused read
// waits for deletes the entries of such tokens (they expired), and must count them first,
// since "right after a start, a read it would refuse first has the tokens stored before the
// start counted". Seed 584 (long): Naver issuing 4-second tokens during a restart storm,
// reads were refused at the floor of 30 with 30 keys issued a token minutes before.
func TestCrashLoopCountsKeysIssuedShortLivedTokens(t *testing.T) {
	h := newHarness(t)
	h.life = 4 * time.Second
	for i := range 40 {
		h.start()
		before := len(h.sent)
		_, err := h.read(fmt.Sprintf("ncp_%d", i))
		var ab *AppBudgetError
		if errors.As(err, &ab) {
			t.Fatalf("process %d, after %d keys were issued a token within minutes: %v", i, before, err)
		}
		if len(h.sent) != before+1 {
			t.Fatalf("process %d sent %d requests, want 1 (%v)", i, len(h.sent)-before, err)
		}
		h.now = h.now.Add(4 * time.Second)
	}
}
