package core_test

import (
	"os"
	"strings"
	"testing"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/internal/modelcheck"
)

func TestScratch(t *testing.T) {
	evs := os.Getenv("EVENTS")
	if evs == "" {
		t.Skip()
	}
	p := modelcheck.DefaultParams
	for _, wp := range modelcheck.Worlds {
		if wp.Name == os.Getenv("WORLD") {
			p = wp
		}
	}
	w := modelcheck.NewWorld(p)
	for _, ev := range strings.Split(evs, ";") {
		ev = strings.TrimSpace(ev)
		if !w.Do(ev) {
			t.Logf("cannot %q; can: %s", ev, w.ChoiceNames())
			break
		}
	}
	t.Logf("trace:\n%s\nviolations:\n%s\nsummary:\n%s", strings.Join(w.Trace, "\n"), strings.Join(w.Violations, "\n"), w.Summary())
}
