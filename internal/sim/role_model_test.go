package sim

import (
	"testing"
	"time"
)

// The model of a role follows what the backend keeps: a write changes only the fields it
// names (README), so an operator's re-creation of the many-seller role over one that has a
// min_remaining_ttl keeps it, as it does for a single-account role. Seed 133 (long): the
// model forgot it, and judged served-at-once a read the plugin rightly renewed first.
func TestRoleModelKeepsTheFieldsAWriteDoesNotName(t *testing.T) {
	write := &Action{Kind: actAPI, App: 0, S: "navercommerce-write-role", Role: sellersRole,
		Params: map[string]string{"name": sellersRole}, Args: map[string]any{"type": "seller", "min_remaining_ttl": "1740s"}}
	for _, role := range []string{sellersRole, "r0"} {
		t.Run(role, func(t *testing.T) {
			w2 := *write
			w2.At, w2.Role, w2.Params = 2*time.Minute, role, map[string]string{"name": role}
			acts := []Action{
				{At: 0, Kind: actConfigNew, App: 0},
				{At: time.Minute, Kind: actRoleCreate, App: 0, Role: role, S: accountID(0, 0)},
				w2,
				{At: 3 * time.Minute, Kind: actRoleCreate, App: 0, Role: role, S: accountID(0, 0)},
			}
			p := Params{Days: 1.0 / 24, Apps: 1, RolesPerApp: 1, Accounts: 1, Alphabet: 1}
			_, w := runWorld(3, p, acts)
			model := *w.apps[0].roles[role]
			if model.minTTL != 29*time.Minute {
				t.Errorf("min_remaining_ttl in the model: %s, want the 29m the write set", model.minTTL)
			}
		})
	}
}
