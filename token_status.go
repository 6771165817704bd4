package navercommerce

import (
	"errors"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/navercommerce/vault-plugin-secrets-navercommerce/internal/core"
)

// What status says of keys: each key's state and data, the summary, pages of keys.

// addKnowledgeWarning says what status does not know yet, so that no check reads missing
// knowledge as health.
func addKnowledgeWarning(resp *logical.Response, k core.Knowledge) {
	switch {
	case !k.RolesKnown:
		resp.AddWarning("status is incomplete: the stored roles could not all be read (see the server log), so which roles name each key is not known; read status again")
	case !k.StoredKnown:
		resp.AddWarning("status is incomplete: the tokens stored before the plugin started could not all be read yet (see the server log); read status again")
	}
}

func slicesFilter(in []core.KeyView, keep func(core.KeyView) bool) []core.KeyView {
	out := in[:0]
	for _, ks := range in {
		if keep(ks) {
			out = append(out, ks)
		}
	}
	return out
}

// keyCursor is how a key is named in after= and next_after.
func keyCursor(k tokenKey) string { return k.Type + "|" + k.AccountID }

// pageOfKeys returns up to limit keys after the cursor, in (type, account) order, and the
// cursor of the next page ("" when none follows).
func pageOfKeys(statuses []core.KeyView, after string, limit int) (page []core.KeyView, next string) {
	sort.Slice(statuses, func(i, j int) bool {
		a, b := statuses[i].Key, statuses[j].Key
		if a.Type != b.Type {
			return a.Type < b.Type
		}
		return a.AccountID < b.AccountID
	})
	start := 0
	if after != "" {
		typ, account, _ := strings.Cut(after, "|")
		start = sort.Search(len(statuses), func(i int) bool {
			k := statuses[i].Key
			return k.Type > typ || (k.Type == typ && k.AccountID > account)
		})
	}
	end := min(start+limit, len(statuses))
	page = statuses[start:end]
	if end < len(statuses) {
		next = keyCursor(page[len(page)-1].Key)
	}
	return page, next
}

// keyStateOf classifies a key (see stateCached and the others).
func keyStateOf(ks core.KeyView, now time.Time) string {
	cached := ks.ExpiresAt.After(now)
	switch {
	case cached && ks.Failures == 0 && !ks.Refused:
		return stateCached
	case cached:
		return stateStale
	case ks.AccountRefused != nil:
		return stateRefused
	case ks.Failures > 0 || ks.Refused:
		return stateFailing
	default:
		return stateIdle
	}
}

// summariseKeys counts statuses by state and sums their requests (keySummaryFields).
func summariseKeys(statuses []core.KeyView, now time.Time) map[string]any {
	states := make(map[string]any, len(keyStateNames))
	counts := make(map[string]int, len(keyStateNames))
	var lastHour, last24h, busiest int
	for _, ks := range statuses {
		counts[keyStateOf(ks, now)]++
		lastHour += ks.Requests1h
		last24h += ks.Requests24h
		busiest = max(busiest, ks.Requests1h)
	}
	for _, s := range keyStateNames {
		states[s] = counts[s]
	}
	return map[string]any{
		fieldKnownKeys:          len(statuses),
		fieldCachedKeys:         counts[stateCached] + counts[stateStale],
		fieldFailingKeys:        counts[stateStale] + counts[stateFailing],
		fieldRefusedKeys:        counts[stateRefused],
		fieldKeyStates:          states,
		fieldRequestsLastHour:   lastHour,
		fieldRequestsLast24h:    last24h,
		fieldBusiestKeyRequests: busiest,
	}
}

// keyStatusData is one key's status as the API shows it. Times that do not apply are left
// out; back-offs only while they last.
func keyStatusData(ks core.KeyView, roles []string, now time.Time, budget int) map[string]any {
	if roles == nil {
		roles = []string{}
	}
	data := map[string]any{
		fieldType:                ks.Key.Type,
		fieldAccountID:           ks.Key.AccountID,
		fieldRoles:               roles,
		fieldCached:              ks.ExpiresAt.After(now),
		fieldState:               keyStateOf(ks, now),
		fieldRequestsLastHour:    ks.Requests1h,
		fieldRequestsLast24h:     ks.Requests24h,
		fieldRequestBudget:       budget,
		fieldConsecutiveFailures: ks.Failures,
	}
	putTime := func(field string, t time.Time) {
		if !t.IsZero() {
			data[field] = formatStatusTime(t)
		}
	}
	if ks.ExpiresAt.After(now) {
		putTime(fieldFetchedAt, ks.FetchedAt)
		putTime(fieldExpiresAt, ks.ExpiresAt)
		putTime(fieldRenewAt, ks.RenewAt)
	}
	putTime(fieldLastRead, ks.LastRead.Truncate(time.Second))
	if ks.BackoffUntil.After(now) {
		putTime(fieldBackoffUntil, ks.BackoffUntil)
	}
	if ks.NextBackground.After(now) {
		putTime(fieldNextBackground, ks.NextBackground)
	}
	if e := ks.LastError; e != nil {
		last := map[string]any{"at": formatStatusTime(e.At), "status": 0, "code": "", "message": e.Err.Error(), "trace_id": ""}
		var ue *upstreamError
		if errors.As(e.Err, &ue) {
			last["status"], last["code"], last["trace_id"] = ue.StatusCode, ue.Code, ue.TraceID
		}
		data[fieldLastError] = last
	}
	if r := ks.AccountRefused; r != nil && !ks.ExpiresAt.After(now) {
		putTime(fieldRefusedUntil, r.Until)
		data[fieldRefusedReason] = r.Text()
	}
	return data
}

func formatStatusTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }
