package core_test

import (
	"strings"
	"testing"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/internal/modelcheck"
)

// Orders of events the exhaustive exploration does not reach (deeper than its depth), each
// named after the README promise it would break: every event must be possible when it comes,
// and no invariant of the model checker may be violated on the way.
func TestPromisesHoldInTheseOrders(t *testing.T) {
	tests := []struct {
		name   string
		world  string // a world of modelcheck.Worlds; "" the whole alphabet
		events string // one event per line, as in testdata scripts
	}{
		{
			// "When storing a new token fails, the next periodic run stores it again; a
			// restart before that loses it." No restart here: the token Naver issued while the
			// config was deleted is in memory only, and the same config written again must be
			// served by it, not by a request Naver answers with the same token.
			name: "a token whose storing failed during a config delete serves the same config again",
			events: `
read a
pending 0 ok
pending 0 ok
pending 0 ok
config delete
pending 0 ok
pending 0 fail
config c1
pending 0 ok
pending 0 ok
pending 0 ok
pending 0 ok
read a
settle`,
		},
		{
			// The same without a failure: the token's write is slow (Raft's fsync), the config
			// is deleted and written again (Terraform's destroy-then-create), and the read that
			// follows loads the key's entry before the write lands. Memory knows the token.
			name: "a token still being stored when the config is deleted and written again serves the next read",
			events: `
read a
pending 0 ok
pending 0 ok
pending 0 ok
pending 0 ok
config delete
config c1
pending 1 ok
pending 1 ok
pending 1 ok
pending 1 ok
read a
settle`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := modelcheck.DefaultParams
			for _, wp := range modelcheck.Worlds {
				if wp.Name == tt.world {
					p = wp
				}
			}
			w := modelcheck.NewWorld(p)
			for _, ev := range strings.Split(strings.TrimSpace(tt.events), "\n") {
				if ev = strings.TrimSpace(ev); ev == "" {
					continue
				}
				if !w.Do(ev) {
					t.Fatalf("%q cannot happen now; what can: %s\n%s", ev, w.ChoiceNames(), strings.Join(w.Trace, "\n"))
				}
			}
			if len(w.Violations) > 0 {
				t.Errorf("violations:\n%s\ntrace:\n%s", strings.Join(w.Violations, "\n"), strings.Join(w.Trace, "\n"))
			}
		})
	}
}
