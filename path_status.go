package navercommerce

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/navercommerce/vault-plugin-secrets-navercommerce/internal/core"
)

const (
	fieldConfigured          = "configured"
	fieldCachedKeys          = "cached_keys"
	fieldKeys                = "keys"
	fieldRole                = "role"
	fieldRoles               = "roles"
	fieldCached              = "cached"
	fieldState               = "state"
	fieldFetchedAt           = "fetched_at"
	fieldRenewAt             = "renew_at"
	fieldLastRead            = "last_read"
	fieldRequestsLastHour    = "requests_last_hour"
	fieldAppRequests         = "application_requests_last_hour"
	fieldAppBudget           = "application_request_budget_per_hour"
	fieldNaverFailingUntil   = "naver_failing_until"
	fieldRequestsLast24h     = "requests_last_24h"
	fieldRequestBudget       = "request_budget_per_hour"
	fieldLastError           = "last_error"
	fieldBackoffUntil        = "backoff_until"
	fieldNextBackground      = "next_background_attempt"
	fieldConsecutiveFailures = "consecutive_failures"
	fieldRefusedUntil        = "refused_until"
	fieldRefusedReason       = "refused_reason"

	// The summary of status and of a many-seller role's status.
	fieldKnownKeys          = "known_keys"
	fieldKeyStates          = "key_states"
	fieldFailingKeys        = "failing_keys"
	fieldRefusedKeys        = "refused_keys"
	fieldKnowledgeComplete  = "knowledge_complete"
	fieldBusiestKeyRequests = "busiest_key_requests_last_hour"
	fieldUnreadableRoles    = "unreadable_roles"
	fieldNextAfter          = "next_after"

	// The filters and paging of status.
	fieldAfter   = "after"
	fieldLimit   = "limit"
	fieldFailing = "failing"

	defaultStatusLimit = 100
	maxStatusLimit     = 1000
)

// The states of a key, one each: the values of "state" and the keys of "key_states".
const (
	stateCached  = "cached"  // a token with life left; the last request succeeded
	stateStale   = "stale"   // a token with life left, but renewing it fails: served with a warning
	stateFailing = "failing" // no token with life left, and the last request failed
	stateRefused = "refused" // no token with life left: Naver refused the account as not authorised (a typo, or a seller who left)
	stateIdle    = "idle"    // no token with life left and no failure: expired, dropped, or never had one
)

var keyStateNames = []string{stateCached, stateStale, stateFailing, stateRefused, stateIdle}

// keyStatusFields describe one key's status: an element of "keys" in status, and the body
// of status/<role>. Never the token, the signature or the secret.
var keyStatusFields = map[string]*framework.FieldSchema{
	fieldType:                {Type: framework.TypeString, Description: "Token type: SELF or SELLER."},
	fieldAccountID:           {Type: framework.TypeString, Description: "Seller account ID (SELLER only; empty for SELF)."},
	fieldRoles:               {Type: framework.TypeStringSlice, Description: "The roles that name this key (every stored role that reads its type and account). Empty: no role names it, and its token is not cached or renewed."},
	fieldCached:              {Type: framework.TypeBool, Description: "Whether a token with life left is cached."},
	fieldState:               {Type: framework.TypeString, Description: "cached (a token with life left), stale (a token with life left whose renewal fails), failing (no token, the last request failed), refused (no token: Naver refused the seller's account as not authorised; see refused_until) or idle (no token, no failure)."},
	fieldRefusedUntil:        {Type: framework.TypeTime, Description: "State refused: reads of the account fail at once with Naver's reason until this time (RFC 3339, UTC), unless the key's token is dropped (DELETE token/...), which lets the next read ask Naver."},
	fieldRefusedReason:       {Type: framework.TypeString, Description: "State refused: Naver's answer."},
	fieldFetchedAt:           {Type: framework.TypeTime, Description: "When the cached token was requested (RFC 3339, UTC); absent when none is cached."},
	fieldExpiresAt:           {Type: framework.TypeTime, Description: "When the cached token expires (RFC 3339, UTC); absent when none is cached."},
	fieldRenewAt:             {Type: framework.TypeTime, Description: "When the token is renewed: in its last 30 minutes (when Naver issues a new one), at the key's point of renewal_spread, or earlier for a role's min_remaining_ttl (RFC 3339, UTC); absent when none is cached."},
	fieldLastRead:            {Type: framework.TypeTime, Description: "When a token was last read for this key (RFC 3339, UTC, to the second); absent when not read since the plugin started."},
	fieldRequestsLastHour:    {Type: framework.TypeInt, Description: "HTTP requests sent to Naver for this key in the last hour, retries included."},
	fieldRequestsLast24h:     {Type: framework.TypeInt, Description: "HTTP requests sent to Naver for this key in the last 24 hours, retries included."},
	fieldRequestBudget:       {Type: framework.TypeInt, Description: "max_token_requests_per_hour: the most requests this key may send in an hour."},
	fieldLastError:           {Type: framework.TypeMap, Description: "The last failed request since the plugin started, absent when none: at (RFC 3339, UTC), status (HTTP status; 0 when Naver did not answer), code (Naver's), message, trace_id (Naver's GNCP-GW-Trace-ID, for Naver support)."},
	fieldBackoffUntil:        {Type: framework.TypeTime, Description: "After a failure, reads share the error instead of asking Naver until this time: the back-off, or while Naver keeps failing, the key's next paced request (RFC 3339, UTC); absent when not backing off."},
	fieldNextBackground:      {Type: framework.TypeTime, Description: "After failures, background renewal does not ask Naver before this time (RFC 3339, UTC); absent when not backing off."},
	fieldConsecutiveFailures: {Type: framework.TypeInt, Description: "Failed requests since the last success."},
}

// keySummaryFields describe a set of keys (every key in status, a many-seller role's keys in
// status/<role>) by counts, so the answer stays small however many sellers there are.
var keySummaryFields = map[string]*framework.FieldSchema{
	fieldKnownKeys:          {Type: framework.TypeInt, Description: "Keys (client ID, type, account) the cache knows: with a token, a failed request or a recent read."},
	fieldCachedKeys:         {Type: framework.TypeInt, Description: "How many of them hold a token with life left."},
	fieldFailingKeys:        {Type: framework.TypeInt, Description: "How many of them failed their last request (states stale and failing)."},
	fieldRefusedKeys:        {Type: framework.TypeInt, Description: "How many of them are accounts Naver refused as not authorised (state refused): not an outage, but a seller to look into."},
	fieldKeyStates:          {Type: framework.TypeMap, Description: "How many keys are in each state: cached, stale, failing, refused, idle."},
	fieldRequestsLastHour:   {Type: framework.TypeInt, Description: "HTTP requests sent to Naver for these keys in the last hour, retries included."},
	fieldRequestsLast24h:    {Type: framework.TypeInt, Description: "HTTP requests sent to Naver for these keys in the last 24 hours, retries included."},
	fieldBusiestKeyRequests: {Type: framework.TypeInt, Description: "The most requests one of these keys sent in the last hour: compare with max_token_requests_per_hour."},
}

func pathStatus(b *backend) []*framework.Path {
	statusFields := map[string]*framework.FieldSchema{
		fieldConfigured:        {Type: framework.TypeBool, Description: "Whether the mount has credentials."},
		fieldClientID:          {Type: framework.TypeString, Description: "The configured client ID."},
		fieldBackgroundRefresh: {Type: framework.TypeBool, Description: "Whether tokens in use are renewed ahead of reads."},
		fieldMaxRequestsHour:   {Type: framework.TypeInt, Description: "The most token requests per key per hour."},
		fieldUnreadableRoles:   {Type: framework.TypeMap, Description: "Stored roles this version cannot read (stored by a newer plugin, or damaged), by name, with the reason; delete them or write their full definition."},
		fieldAppRequests:       {Type: framework.TypeInt, Description: "Token requests the whole application sent in the last hour, retries included, counted across restarts."},
		fieldAppBudget:         {Type: framework.TypeInt, Description: "max_application_requests_per_hour, or the automatic budget it stands for."},
		fieldNaverFailingUntil: {Type: framework.TypeTime, Description: "While Naver keeps failing for the application: when one request tries again (no other key asks before)."},
		fieldKnowledgeComplete: {Type: framework.TypeBool, Description: "Whether status knows every stored role and every key stored before the plugin started; false right after a start when storage could not be read yet (a warning says why): then the counts may miss keys, and a check must not read them as healthy."},
		fieldKeys:              {Type: framework.TypeSlice, Description: "With keys=true or a filter: one page of the selected keys, sorted by type and account; each has the fields of status/<role> but role and configured."},
		fieldNextAfter:         {Type: framework.TypeString, Description: "When more keys follow the page: pass it as after= for the next page."},
	}
	for name, f := range keySummaryFields {
		statusFields[name] = f
	}
	roleFields := map[string]*framework.FieldSchema{
		fieldRole:              {Type: framework.TypeString, Description: "The role asked about."},
		fieldConfigured:        {Type: framework.TypeBool, Description: "Whether the mount has credentials."},
		fieldAllowedAccountIDs: {Type: framework.TypeCommaStringSlice, Description: "A many-seller role's sellers; then the summary fields of status describe the keys it names, and status/<role>/<account_id> one of them."},
		fieldKnowledgeComplete: {Type: framework.TypeBool, Description: "A many-seller role: whether the summary knows every key stored before the plugin started (see status)."},
	}
	for name, f := range keySummaryFields {
		roleFields[name] = f
	}
	for name, f := range keyStatusFields {
		roleFields[name] = f
	}
	sellerFields := map[string]*framework.FieldSchema{
		fieldRole:              {Type: framework.TypeString, Description: "The role asked about."},
		fieldConfigured:        {Type: framework.TypeBool, Description: "Whether the mount has credentials."},
		fieldKnowledgeComplete: {Type: framework.TypeBool, Description: "Whether the answer knows every stored role and every token stored before the plugin started (see status)."},
	}
	for name, f := range keyStatusFields {
		sellerFields[name] = f
	}
	roleNameField := &framework.FieldSchema{
		Type:        framework.TypeString,
		Description: "Name of the role whose token to describe.",
		Required:    true,
	}
	return []*framework.Path{
		{
			Pattern: "status$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
			},
			Fields: map[string]*framework.FieldSchema{
				fieldKeys: {
					Type:        framework.TypeBool,
					Description: "List the keys (one page), not only the summary. Any filter implies it.",
					Query:       true,
				},
				fieldAfter: {
					Type:        framework.TypeString,
					Description: `Paging: list the keys after this one ("TYPE|account_id", as next_after gives it).`,
					Query:       true,
				},
				fieldLimit: {
					Type:        framework.TypeInt,
					Description: fmt.Sprintf("Paging: at most this many keys (default %d, at most %d).", defaultStatusLimit, maxStatusLimit),
					Query:       true,
				},
				fieldFailing: {
					Type:        framework.TypeBool,
					Description: "Filter: only keys whose last request failed (states stale and failing).",
					Query:       true,
				},
				fieldRole: {
					Type:        framework.TypeString,
					Description: "Filter: only the keys this role names.",
					Query:       true,
				},
				fieldAccountID: {
					Type:        framework.TypeString,
					Description: "Filter: only this seller's key.",
					Query:       true,
				},
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{
					Callback: b.pathStatusRead,
					Summary:  "Summarise the token cache (keys by state, requests, failing keys); with keys=true or a filter, list keys a page at a time. Never a token.",
					// The cache's state is in the memory of the node that serves token reads.
					ForwardPerformanceStandby: true,
					DisplayAttrs: &framework.DisplayAttributes{
						OperationVerb:   "read",
						OperationSuffix: "status",
					},
					Responses: map[int][]framework.Response{
						200: {{Description: "OK", Fields: statusFields}},
					},
				},
			},
			HelpSynopsis:    "Summarise the token cache, and list its keys by page or filter.",
			HelpDescription: strings.TrimSpace(pathStatusHelp),
		},
		{
			Pattern: "status/" + roleNamePattern,
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
			},
			Fields: map[string]*framework.FieldSchema{fieldRoleName: roleNameField},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{
					Callback:                  b.pathRoleStatusRead,
					Summary:                   "Show the cached token of a role's type and account (times, request counts, last error); for a many-seller role, a summary of its sellers' keys.",
					ForwardPerformanceStandby: true,
					DisplayAttrs: &framework.DisplayAttributes{
						OperationVerb:   "read",
						OperationSuffix: "role-status",
					},
					Responses: map[int][]framework.Response{
						200: {{Description: "OK", Fields: roleFields}},
					},
				},
			},
			HelpSynopsis:    "Show the cached token of a role's type and account: times, request counts, last error.",
			HelpDescription: strings.TrimSpace(pathStatusHelp),
		},
		{
			Pattern: "status/" + framework.GenericNameRegex(fieldRoleName) + "/" + framework.MatchAllRegex(fieldAccountID),
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
			},
			Fields: map[string]*framework.FieldSchema{
				fieldRoleName: roleNameField,
				fieldAccountID: {
					Type:        framework.TypeString,
					Description: "The seller's account ID: one of the accounts the many-seller role allows.",
					Required:    true,
				},
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{
					Callback:                  b.pathSellerStatusRead,
					Summary:                   "Show the cached token of one seller of a many-seller role: times, request counts, last error.",
					ForwardPerformanceStandby: true,
					DisplayAttrs: &framework.DisplayAttributes{
						OperationVerb:   "read",
						OperationSuffix: "seller-status",
					},
					Responses: map[int][]framework.Response{
						200: {{Description: "OK", Fields: sellerFields}},
					},
				},
			},
			HelpSynopsis:    "Show the cached token of one seller of a many-seller role.",
			HelpDescription: strings.TrimSpace(pathStatusHelp),
		},
	}
}

const pathStatusHelp = `
"status" summarises the mount and its token cache (a key is a client ID, type and account:
roles naming the same account share it): how many keys are in each state (cached, stale: a
token whose renewal fails, failing: no token and the last request failed, idle), how many
requests went to Naver in the last hour and 24 hours, the busiest key's requests against
max_token_requests_per_hour, and the stored roles this version cannot read. With keys=true it
also lists the keys, a page at a time (limit, after=next_after); the filters failing=true,
role=<name> and account_id=<id> select keys (and imply keys=true), and the counts then describe
the selected keys.

"status/<role>" describes the key of one role, also when nothing is cached for it (then cached
is false, and a warning says so); it reads only that role. For a many-seller role it gives the
summary of the keys the role names; "status/<role>/<account_id>" describes one seller's key.

Per key: type, account_id, state (cached, stale, failing, refused, idle), the roles that name
it, when its
token was fetched, expires and will be renewed (in its last 30 minutes, when Naver issues a
new one, at the key's point of renewal_spread), when it was last read, the requests sent to Naver in the last hour and 24 hours
against max_token_requests_per_hour, the last error (time, HTTP status, Naver's code and
message, and the trace ID Naver support asks for), and any back-off: the time until which reads
share that error instead of asking again, and, after repeated failures, the next background
renewal attempt. Times are RFC 3339 in UTC; a time that does not apply is left out.

The cache's memory is per plugin process: after a restart or reload, the stored tokens are
listed from the first status read on (it reads what storage holds); knowledge_complete says
whether that, and reading every role, succeeded. Request counts and errors are kept in memory only. Never
shows a token, a signature or the client secret. Grant it to operators, not to applications
(see examples/policy-operator.hcl).
`

// statusQuery is what a status read asks for: the filters select keys, the paging a page.
type statusQuery struct {
	list     bool
	failing  bool
	role     *roleEntry // nil: every role's keys
	account  string     // "": every account
	after    string     // "TYPE|account_id"; "": from the start
	limit    int
	filtered bool
}

func parseStatusQuery(ctx context.Context, b *backend, req *logical.Request, d *framework.FieldData) (statusQuery, *logical.Response, error) {
	q := statusQuery{limit: defaultStatusLimit}
	q.list = d.Get(fieldKeys).(bool)
	q.failing = d.Get(fieldFailing).(bool)
	q.after = d.Get(fieldAfter).(string)
	if q.after != "" && !strings.Contains(q.after, "|") {
		return q, logical.ErrorResponse(`%s: must be a key as next_after gives it ("TYPE|account_id"), got %q`, fieldAfter, q.after), nil
	}
	if v, ok := d.GetOk(fieldLimit); ok {
		q.limit = v.(int)
		if q.limit < 1 || q.limit > maxStatusLimit {
			return q, logical.ErrorResponse("%s: must be from 1 to %d, got %d", fieldLimit, maxStatusLimit, q.limit), nil
		}
	}
	q.account = d.Get(fieldAccountID).(string)
	if q.account != "" {
		if err := validateAccountID(q.account); err != nil {
			return q, logical.ErrorResponse("%s %q: %v", fieldAccountID, q.account, err), nil
		}
	}
	if name := d.Get(fieldRole).(string); name != "" {
		r, err := b.readRole(ctx, req.Storage, name)
		if err != nil {
			return q, nil, err
		}
		if r == nil {
			return q, logical.ErrorResponse("%s: role %q does not exist", fieldRole, name), nil
		}
		q.role = r
	}
	q.filtered = q.failing || q.role != nil || q.account != ""
	q.list = q.list || q.filtered || q.after != ""
	return q, nil, nil
}

func (b *backend) pathStatusRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	q, errResp, err := parseStatusQuery(ctx, b, req, d)
	if errResp != nil || err != nil {
		return errResp, err
	}
	if err := b.scanRoles(ctx, req.Storage, true); err != nil {
		return nil, err
	}
	unreadable := map[string]any{}
	for name, reason := range b.unreadable.list() {
		unreadable[name] = reason
	}
	st, err := b.getConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if st == nil {
		data := map[string]any{fieldConfigured: false, fieldUnreadableRoles: unreadable}
		for name, v := range summariseKeys(nil, time.Time{}) {
			data[name] = v
		}
		if q.list {
			data[fieldKeys] = []map[string]any{}
		}
		return &logical.Response{Data: data}, nil
	}
	b.tokens.ensureSwept(ctx, req.Storage)
	b.tokens.ensureCounts(ctx, req.Storage, st.config.ClientID)
	now := b.now()
	clientID := st.config.ClientID
	var statuses []core.KeyView
	var app core.AppView
	var knowledge core.Knowledge
	var lastHour, last24h int
	b.tokens.view(func(m *core.Machine) {
		statuses = m.Keys(now, func(k tokenKey) bool {
			return (q.account == "" || k.AccountID == q.account) && (q.role == nil || q.role.names(clientID, k))
		})
		app, knowledge = m.App(now), m.Knowledge()
		lastHour, last24h = m.Requests(now)
	})
	if q.failing {
		statuses = slicesFilter(statuses, func(v core.KeyView) bool {
			state := keyStateOf(v, now)
			return state == stateStale || state == stateFailing
		})
	}
	budget := st.config.maxRequestsPerHour()
	data := map[string]any{
		fieldConfigured:        true,
		fieldClientID:          clientID,
		fieldBackgroundRefresh: !st.config.NoBackgroundRefresh,
		fieldMaxRequestsHour:   budget,
		fieldUnreadableRoles:   unreadable,
		fieldKnowledgeComplete: knowledge.RolesKnown && knowledge.StoredKnown,
	}
	for name, v := range summariseKeys(statuses, now) {
		data[name] = v
	}
	if !q.filtered {
		// The whole application's requests, also those of keys evicted since (a deleted
		// role's): Naver counts them all.
		data[fieldRequestsLastHour], data[fieldRequestsLast24h] = lastHour, last24h
	}
	data[fieldAppRequests] = app.Requests1h
	data[fieldAppBudget] = app.Budget
	if now.Before(app.FailingUntil) {
		data[fieldNaverFailingUntil] = app.FailingUntil.UTC().Format(time.RFC3339)
	}
	if q.list {
		page, next := pageOfKeys(statuses, q.after, q.limit)
		keys := make([]map[string]any, 0, len(page))
		for _, v := range page {
			keys = append(keys, keyStatusData(v, v.Roles, now, budget))
		}
		data[fieldKeys] = keys
		if next != "" {
			data[fieldNextAfter] = next
		}
	}
	resp := &logical.Response{Data: data}
	if len(unreadable) > 0 {
		resp.AddWarning(fmt.Sprintf("%d stored role(s) cannot be read by this version (see %s): delete them, or write their full definition", len(unreadable), fieldUnreadableRoles))
	}
	addKnowledgeWarning(resp, knowledge)
	return resp, nil
}

func (b *backend) pathRoleStatusRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get(fieldRoleName).(string)
	role, st, errResp, err := b.roleForStatus(ctx, req, name)
	if errResp != nil || err != nil {
		return errResp, err
	}
	if !role.manySellers() {
		return b.keyStatusResponse(ctx, req, name, role, st, role.AccountID)
	}

	data := map[string]any{
		fieldRole:              name,
		fieldConfigured:        st != nil,
		fieldType:              role.Type,
		fieldAllowedAccountIDs: role.AllowedAccountIDs,
	}
	resp := &logical.Response{Data: data}
	if st == nil {
		resp.AddWarning(notConfiguredWarning(req))
		return resp, nil
	}
	if err := b.scanRoles(ctx, req.Storage, true); err != nil {
		return nil, err
	}
	b.tokens.ensureSwept(ctx, req.Storage)
	now := b.now()
	clientID := st.config.ClientID
	var statuses []core.KeyView
	var knowledge core.Knowledge
	b.tokens.view(func(m *core.Machine) {
		statuses = m.Keys(now, func(k tokenKey) bool { return role.names(clientID, k) })
		knowledge = m.Knowledge()
	})
	for field, v := range summariseKeys(statuses, now) {
		data[field] = v
	}
	data[fieldKnowledgeComplete] = knowledge.RolesKnown && knowledge.StoredKnown
	addKnowledgeWarning(resp, knowledge)
	data[fieldRequestBudget] = st.config.maxRequestsPerHour()
	resp.AddWarning(fmt.Sprintf("role %q serves many sellers: read %sstatus/%s/<account_id> for one seller's key, or %sstatus with role=%s for the list", name, req.MountPoint, name, req.MountPoint, name))
	return resp, nil
}

func (b *backend) pathSellerStatusRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get(fieldRoleName).(string)
	role, st, errResp, err := b.roleForStatus(ctx, req, name)
	if errResp != nil || err != nil {
		return errResp, err
	}
	account := d.Get(fieldAccountID).(string)
	if errResp := checkSellerAccount(req, name, role, account); errResp != nil {
		return errResp, nil
	}
	return b.keyStatusResponse(ctx, req, name, role, st, account)
}

// roleForStatus reads only the named role (never every role), and the config (nil when the
// mount is not configured).
func (b *backend) roleForStatus(ctx context.Context, req *logical.Request, name string) (*roleEntry, *configState, *logical.Response, error) {
	role, err := b.readRole(ctx, req.Storage, name)
	if err != nil {
		return nil, nil, nil, err
	}
	if role == nil {
		return nil, nil, logical.ErrorResponse("role %q does not exist; create it with a write to %sroles/%s", name, req.MountPoint, name), nil
	}
	st, err := b.getConfig(ctx, req.Storage)
	if err != nil {
		return nil, nil, nil, err
	}
	return role, st, nil, nil
}

func notConfiguredWarning(req *logical.Request) string {
	return fmt.Sprintf("the secrets engine is not configured: write %s and %s to %sconfig", fieldClientID, fieldClientSecret, req.MountPoint)
}

// keyStatusResponse describes the key of role and account (the role's own for a single-account role).
func (b *backend) keyStatusResponse(ctx context.Context, req *logical.Request, name string, role *roleEntry, st *configState, account string) (*logical.Response, error) {
	if st == nil {
		resp := &logical.Response{Data: map[string]any{
			fieldRole:       name,
			fieldConfigured: false,
			fieldType:       role.Type,
			fieldAccountID:  account,
			fieldCached:     false,
		}}
		resp.AddWarning(notConfiguredWarning(req))
		return resp, nil
	}
	if err := b.scanRoles(ctx, req.Storage, true); err != nil {
		return nil, err
	}
	now := b.now()
	key := tokenKey{ClientID: st.config.ClientID, Type: role.Type, AccountID: account}
	ks, err := b.keyView(ctx, req.Storage, now, st, key)
	if err != nil {
		return nil, err
	}
	roles := ks.Roles
	if !slices.Contains(roles, name) {
		roles = append(roles, name)
		sort.Strings(roles)
	}
	data := keyStatusData(ks, roles, now, st.config.maxRequestsPerHour())
	data[fieldRole] = name
	data[fieldConfigured] = true
	var knowledge core.Knowledge
	b.tokens.view(func(m *core.Machine) { knowledge = m.Knowledge() })
	// One key's status reads its stored token itself; only the roles must be known.
	data[fieldKnowledgeComplete] = knowledge.RolesKnown
	resp := &logical.Response{Data: data}
	if !knowledge.RolesKnown {
		addKnowledgeWarning(resp, knowledge)
	}
	path := name
	if role.manySellers() {
		path += "/" + account
	}
	switch {
	case ks.AccountRefused != nil && data[fieldCached] != true:
		resp.AddWarning(fmt.Sprintf("Naver refused account %s as not authorised by the seller: reads of %stoken/%s fail at once until %s. If the account ID is right and the seller authorised the application again, drop the token (vault delete %stoken/%s) so the next read asks Naver", account, req.MountPoint, path, ks.AccountRefused.Until.UTC().Format(time.RFC3339), req.MountPoint, path))
	case data[fieldCached] != true:
		next := fmt.Sprintf("the next read of %stoken/%s asks Naver", req.MountPoint, path)
		if now.Before(ks.BackoffUntil) {
			// Reads share the last failure until then instead of asking.
			next = fmt.Sprintf("reads of %stoken/%s share the last failure until %s, then ask Naver", req.MountPoint, path, ks.BackoffUntil.UTC().Format(time.RFC3339))
		}
		resp.AddWarning(fmt.Sprintf("no token is cached for this role's type and account: none was read since the plugin started, or it expired or was dropped; %s", next))
	}
	return resp, nil
}

// keyView is the status of one key: from the core (memory, or what the sweep found), else
// from storage.
func (b *backend) keyView(ctx context.Context, s logical.Storage, now time.Time, st *configState, key tokenKey) (core.KeyView, error) {
	var v core.KeyView
	var ok bool
	b.tokens.view(func(m *core.Machine) { v, ok = m.View(now, key) })
	if ok {
		return v, nil
	}
	tok, err := loadToken(ctx, s, key)
	if err != nil {
		return core.KeyView{}, fmt.Errorf("reading the cached %s token: %w", key.Type, err)
	}
	if tok.Servable(st.policy.credentials) && tok.Life(now) > 0 {
		v.FetchedAt, v.ExpiresAt = tok.FetchedAt, tok.ExpiresAt
		v.RenewAt = tok.RenewAt(renewSpread(key, min(st.config.renewalSpread(), renewSpreadWidth)))
	}
	if tok != nil && tok.RefusedUntil.After(now) {
		v.AccountRefused = &core.AccountRefusedError{Account: key.AccountID, Until: tok.RefusedUntil, Reason: errors.New(tok.RefusedReason)}
	}
	return v, nil
}
