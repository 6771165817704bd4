package navercommerce

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

const (
	fieldConfigured          = "configured"
	fieldCachedKeys          = "cached_keys"
	fieldKeys                = "keys"
	fieldRole                = "role"
	fieldRoles               = "roles"
	fieldCached              = "cached"
	fieldFetchedAt           = "fetched_at"
	fieldRenewAt             = "renew_at"
	fieldLastRead            = "last_read"
	fieldRequestsLastHour    = "requests_last_hour"
	fieldRequestsLast24h     = "requests_last_24h"
	fieldRequestBudget       = "request_budget_per_hour"
	fieldLastError           = "last_error"
	fieldBackoffUntil        = "backoff_until"
	fieldNextBackground      = "next_background_attempt"
	fieldConsecutiveFailures = "consecutive_failures"
)

// keyStatusFields describe one key's status: an element of "keys" in status, and the body
// of status/<role>. Never the token, the signature or the secret.
var keyStatusFields = map[string]*framework.FieldSchema{
	fieldType:                {Type: framework.TypeString, Description: "Token type: SELF or SELLER."},
	fieldAccountID:           {Type: framework.TypeString, Description: "Seller account ID (SELLER only; empty for SELF)."},
	fieldRoles:               {Type: framework.TypeStringSlice, Description: "The roles that name this type and account now."},
	fieldCached:              {Type: framework.TypeBool, Description: "Whether a token with life left is cached."},
	fieldFetchedAt:           {Type: framework.TypeTime, Description: "When the cached token was requested (RFC 3339, UTC); absent when none is cached."},
	fieldExpiresAt:           {Type: framework.TypeTime, Description: "When the cached token expires (RFC 3339, UTC); absent when none is cached."},
	fieldRenewAt:             {Type: framework.TypeTime, Description: "When Naver will issue a new token, and so when the token is renewed: 30 minutes before its expiry (RFC 3339, UTC); absent when none is cached."},
	fieldLastRead:            {Type: framework.TypeTime, Description: "When a token was last read for this key (RFC 3339, UTC, to the second); absent when not read since the plugin started."},
	fieldRequestsLastHour:    {Type: framework.TypeInt, Description: "HTTP requests sent to Naver for this key in the last hour, retries included."},
	fieldRequestsLast24h:     {Type: framework.TypeInt, Description: "HTTP requests sent to Naver for this key in the last 24 hours, retries included."},
	fieldRequestBudget:       {Type: framework.TypeInt, Description: "max_token_requests_per_hour: the most requests this key may send in an hour."},
	fieldLastError:           {Type: framework.TypeMap, Description: "The last failed request since the plugin started, absent when none: at (RFC 3339, UTC), status (HTTP status; 0 when Naver did not answer), code (Naver's), message, trace_id (Naver's GNCP-GW-Trace-ID, for Naver support)."},
	fieldBackoffUntil:        {Type: framework.TypeTime, Description: "After a failure, reads share the error instead of asking Naver until this time (RFC 3339, UTC); absent when not backing off."},
	fieldNextBackground:      {Type: framework.TypeTime, Description: "After failures, background renewal does not ask Naver before this time (RFC 3339, UTC); absent when not backing off."},
	fieldConsecutiveFailures: {Type: framework.TypeInt, Description: "Failed requests since the last success."},
}

func pathStatus(b *backend) []*framework.Path {
	roleFields := map[string]*framework.FieldSchema{
		fieldRole:       {Type: framework.TypeString, Description: "The role asked about."},
		fieldConfigured: {Type: framework.TypeBool, Description: "Whether the mount has credentials."},
	}
	for name, f := range keyStatusFields {
		roleFields[name] = f
	}
	return []*framework.Path{
		{
			Pattern: "status$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{
					Callback: b.pathStatusRead,
					Summary:  "Show every cached token's times, request counts and last error; never a token.",
					// The cache's state is in the memory of the node that serves token reads.
					ForwardPerformanceStandby: true,
					DisplayAttrs: &framework.DisplayAttributes{
						OperationVerb:   "read",
						OperationSuffix: "status",
					},
					Responses: map[int][]framework.Response{
						200: {{Description: "OK", Fields: map[string]*framework.FieldSchema{
							fieldConfigured:        {Type: framework.TypeBool, Description: "Whether the mount has credentials; when false, only cached_keys and keys follow."},
							fieldClientID:          {Type: framework.TypeString, Description: "The configured client ID."},
							fieldBackgroundRefresh: {Type: framework.TypeBool, Description: "Whether tokens in use are renewed ahead of reads."},
							fieldMaxRequestsHour:   {Type: framework.TypeInt, Description: "The most token requests per key per hour."},
							fieldCachedKeys:        {Type: framework.TypeInt, Description: "How many keys (client ID, type, account) hold a token with life left."},
							fieldKeys:              {Type: framework.TypeSlice, Description: "One object per key the cache knows: with a token, or with a failed request. Each has the fields of status/<role> but role and configured."},
						}}},
					},
				},
			},
			HelpSynopsis:    "Show the token cache: every key's token times, request counts and last error.",
			HelpDescription: strings.TrimSpace(pathStatusHelp),
		},
		{
			Pattern: "status/" + roleNamePattern,
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
			},
			Fields: map[string]*framework.FieldSchema{
				fieldRoleName: {
					Type:        framework.TypeString,
					Description: "Name of the role whose token to describe.",
					Required:    true,
				},
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{
					Callback:                  b.pathRoleStatusRead,
					Summary:                   "Show the cached token of a role's type and account: times, request counts, last error.",
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
	}
}

const pathStatusHelp = `
"status" describes the mount and every key of the token cache (a key is a client ID, type and
account: roles naming the same account share it); "status/<role>" describes the key of one role,
also when nothing is cached for it (then cached is false, and a warning says so).

Per key: type, account_id, the roles that name it, when its token was fetched, expires and will
be renewed (30 minutes before expiry, when Naver issues a new one), when it was last read, the
requests sent to Naver in the last hour and 24 hours against max_token_requests_per_hour, the
last error (time, HTTP status, Naver's code and message, and the trace ID Naver support asks
for), and any back-off: the time until which reads share that error instead of asking again,
and, after repeated failures, the next background renewal attempt. Times are RFC 3339 in UTC;
a time that does not apply is left out.

The cache's memory is per plugin process: after a restart or reload, keys appear once read,
except that the stored tokens of keys that roles name are listed with cached=true from the
start. Request counts and errors are kept in memory only. Never shows a token, a signature or
the client secret. Grant it to operators, not to applications (see
examples/policy-operator.hcl).
`

func (b *backend) pathStatusRead(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	st, err := b.getConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return &logical.Response{Data: map[string]any{
			fieldConfigured: false,
			fieldCachedKeys: 0,
			fieldKeys:       []map[string]any{},
		}}, nil
	}
	b.tokens.ensureSwept(ctx, req.Storage, st.policy.credentials)
	now := b.now()
	roles, err := rolesByKey(ctx, req.Storage, st.config.ClientID)
	if err != nil {
		return nil, err
	}
	statuses, err := b.keyStatuses(ctx, req.Storage, now, st.policy.credentials, roles)
	if err != nil {
		return nil, err
	}
	budget := st.config.maxRequestsPerHour()
	keys := make([]map[string]any, 0, len(statuses))
	cached := 0
	for _, ks := range statuses {
		data := keyStatusData(ks, roles[ks.Key], now, budget)
		if data[fieldCached] == true {
			cached++
		}
		keys = append(keys, data)
	}
	return &logical.Response{Data: map[string]any{
		fieldConfigured:        true,
		fieldClientID:          st.config.ClientID,
		fieldBackgroundRefresh: !st.config.NoBackgroundRefresh,
		fieldMaxRequestsHour:   budget,
		fieldCachedKeys:        cached,
		fieldKeys:              keys,
	}}, nil
}

func (b *backend) pathRoleStatusRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get(fieldRoleName).(string)
	role, err := readRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if role == nil {
		return logical.ErrorResponse("role %q does not exist; create it with a write to %sroles/%s", name, req.MountPoint, name), nil
	}
	st, err := b.getConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if st == nil {
		resp := &logical.Response{Data: map[string]any{
			fieldRole:       name,
			fieldConfigured: false,
			fieldType:       role.Type,
			fieldAccountID:  role.AccountID,
			fieldCached:     false,
		}}
		resp.AddWarning(fmt.Sprintf("the secrets engine is not configured: write %s and %s to %sconfig", fieldClientID, fieldClientSecret, req.MountPoint))
		return resp, nil
	}

	now := b.now()
	key := role.tokenKey(st.config.ClientID)
	ks, err := b.keyStatus(ctx, req.Storage, now, st.policy.credentials, key)
	if err != nil {
		return nil, err
	}
	roles, err := rolesByKey(ctx, req.Storage, st.config.ClientID)
	if err != nil {
		return nil, err
	}
	data := keyStatusData(ks, roles[key], now, st.config.maxRequestsPerHour())
	data[fieldRole] = name
	data[fieldConfigured] = true
	resp := &logical.Response{Data: data}
	if data[fieldCached] != true {
		resp.AddWarning(fmt.Sprintf("no token is cached for this role's type and account: none was read since the plugin started, or it expired or was dropped; the next read of %stoken/%s asks Naver", req.MountPoint, name))
	}
	return resp, nil
}

// keyStatuses is the status of every key the cache has in memory, and of every stored token
// of a key that roles name but memory does not hold yet (after a restart, before its first
// read). A stored token no role names is evicted by the periodic function; it is not shown.
func (b *backend) keyStatuses(ctx context.Context, s logical.Storage, now time.Time, credentials string, roles map[tokenKey][]string) ([]keyStatus, error) {
	out := b.tokens.status(now, credentials)
	inMemory := make(map[tokenKey]bool, len(out))
	for _, ks := range out {
		inMemory[ks.Key] = true
	}
	for key := range roles {
		if inMemory[key] {
			continue
		}
		ks, ok, err := b.storedKeyStatus(ctx, s, now, credentials, key)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, ks)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key.String() < out[j].Key.String() })
	return out, nil
}

// keyStatus is the status of one key: from memory, else from storage, else only what the
// request log knows.
func (b *backend) keyStatus(ctx context.Context, s logical.Storage, now time.Time, credentials string, key tokenKey) (keyStatus, error) {
	for _, ks := range b.tokens.status(now, credentials) {
		if ks.Key == key {
			return ks, nil
		}
	}
	ks, ok, err := b.storedKeyStatus(ctx, s, now, credentials, key)
	if err != nil || ok {
		return ks, err
	}
	ks = keyStatus{Key: key}
	ks.Requests1h, ks.Requests24h = b.requestCounts(now, key)
	return ks, nil
}

// storedKeyStatus is the status of the key's token in storage; ok is false when there is
// none of these credentials with life left.
func (b *backend) storedKeyStatus(ctx context.Context, s logical.Storage, now time.Time, credentials string, key tokenKey) (ks keyStatus, ok bool, err error) {
	tok, err := b.tokens.load(ctx, s, key)
	if err != nil {
		return keyStatus{}, false, fmt.Errorf("reading the cached %s token: %w", key.Type, err)
	}
	if tok == nil || tok.Credentials != credentials || tok.life(now) <= 0 {
		return keyStatus{}, false, nil
	}
	ks = keyStatus{Key: key, FetchedAt: tok.FetchedAt, ExpiresAt: tok.ExpiresAt, RenewAt: tok.renewAt()}
	ks.Requests1h, ks.Requests24h = b.requestCounts(now, key)
	return ks, true, nil
}

// requestCounts reads the key's request log without creating one.
func (b *backend) requestCounts(now time.Time, key tokenKey) (lastHour, last24h int) {
	v, ok := b.tokens.requests.Load(key)
	if !ok {
		return 0, 0
	}
	log := v.(*requestLog)
	lastHour, _ = log.since(now, time.Hour)
	last24h, _ = log.since(now, 24*time.Hour)
	return lastHour, last24h
}

// rolesByKey maps every key of clientID to the roles that name it, sorted. Status is for
// operators, so reading every role is affordable; the cache itself knows only the roles
// read through it since the plugin started.
func rolesByKey(ctx context.Context, s logical.Storage, clientID string) (map[tokenKey][]string, error) {
	names, err := s.List(ctx, roleStoragePrefix)
	if err != nil {
		return nil, fmt.Errorf("listing roles: %w", err)
	}
	sort.Strings(names)
	out := make(map[tokenKey][]string)
	for _, name := range names {
		r, err := readRole(ctx, s, name)
		if err != nil {
			return nil, err
		}
		if r != nil {
			k := r.tokenKey(clientID)
			out[k] = append(out[k], name)
		}
	}
	return out, nil
}

// keyStatusData is one key's status as the API shows it. Times that do not apply are left
// out; back-offs only while they last.
func keyStatusData(ks keyStatus, roles []string, now time.Time, budget int) map[string]any {
	if roles == nil {
		roles = []string{}
	}
	data := map[string]any{
		fieldType:                ks.Key.Type,
		fieldAccountID:           ks.Key.AccountID,
		fieldRoles:               roles,
		fieldCached:              ks.ExpiresAt.After(now),
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
		data[fieldLastError] = map[string]any{
			"at":       formatStatusTime(e.At),
			"status":   e.StatusCode,
			"code":     e.Code,
			"message":  e.Message,
			"trace_id": e.TraceID,
		}
	}
	return data
}

func formatStatusTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }
