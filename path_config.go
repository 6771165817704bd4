package navercommerce

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/navercommerce/vault-plugin-secrets-navercommerce/internal/core"
)

const (
	configStorageKey = "config"

	fieldClientID          = "client_id"
	fieldClientSecret      = "client_secret"
	fieldBaseURL           = "base_url"
	fieldRequestTimeout    = "request_timeout"
	fieldMaxRetries        = "max_retries"
	fieldProxyURL          = "proxy_url"
	fieldVerifyConnection  = "verify_connection"
	fieldBackgroundRefresh = "background_refresh"
	fieldMaxRequestsHour   = "max_token_requests_per_hour"
	fieldMaxAppRequests    = "max_application_requests_per_hour"
	fieldRenewalSpread     = "renewal_spread"

	defaultBaseURL        = "https://api.commerce.naver.com/external"
	defaultRequestTimeout = 10 * time.Second
	maxRequestTimeout     = 60 * time.Second // well inside Vault's 90-second request limit
	defaultMaxRetries     = 2
	maxMaxRetries         = 5
	// defaultMaxRequestsHour: a healthy key asks once in 2.5 hours. While Naver fails, a
	// key's requests are paced (see pacing): 3 at once, then one every 6m40s, so a key is
	// served within minutes of Naver's recovery, however long the storm. The application
	// budget, not this, keeps many keys from Naver's penalty.
	defaultMaxRequestsHour = 12
	maxMaxRequestsHour     = 60
	maxMaxAppRequests      = 1000000
	// The password Naver signs is client_id + "_" + a 13-digit timestamp, and bcrypt reads
	// at most 71 bytes of it (plus a NUL).
	maxClientIDLength = bcryptMaxPassword - 1 - len("_") - 13
)

// naverConfig is the stored configuration of the mount (seal-wrapped).
type naverConfig struct {
	Format         int           `json:"format,omitempty"` // see storage_format.go
	ClientID       string        `json:"client_id"`
	ClientSecret   string        `json:"client_secret"`
	BaseURL        string        `json:"base_url"`
	RequestTimeout time.Duration `json:"request_timeout"`
	MaxRetries     int           `json:"max_retries"`
	ProxyURL       string        `json:"proxy_url,omitempty"`
	// BackgroundRefresh is stored negated so configs written before the field existed keep
	// the default (on).
	NoBackgroundRefresh bool `json:"no_background_refresh,omitempty"`
	// MaxRequestsPerHour is 0 in configs written before the field existed: the default.
	MaxRequestsPerHour int `json:"max_token_requests_per_hour,omitempty"`
	// MaxAppRequestsPerHour is 0 for the automatic budget (see appBudget).
	MaxAppRequestsPerHour int `json:"max_application_requests_per_hour,omitempty"`
	// RenewalSpread is nil in configs that never set it: the default.
	RenewalSpread *time.Duration `json:"renewal_spread,omitempty"`
}

func (c *naverConfig) renewalSpread() time.Duration {
	if c.RenewalSpread == nil {
		return renewSpreadWidth
	}
	return *c.RenewalSpread
}

func (c *naverConfig) maxRequestsPerHour() int {
	if c.MaxRequestsPerHour <= 0 {
		return defaultMaxRequestsHour
	}
	return c.MaxRequestsPerHour
}

// credentialsID fingerprints what cached tokens depend on.
func (c *naverConfig) credentialsID() string {
	return credentialsID(c.ClientID, c.ClientSecret, comparableBaseURL(c.BaseURL))
}

func pathConfig(b *backend) *framework.Path {
	return &framework.Path{
		Pattern: "config",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
		},
		Fields: map[string]*framework.FieldSchema{
			fieldClientID: {
				Type:        framework.TypeString,
				Description: "Application ID issued by the Naver Commerce API center. Required on create.",
				DisplayAttrs: &framework.DisplayAttributes{
					Name: "Client ID",
				},
			},
			fieldClientSecret: {
				Type: framework.TypeString,
				Description: `Application secret issued by Naver: a bcrypt salt such as "$2a$04$" followed by 22 characters. ` +
					"Required on create; write-only: never returned.",
				DisplayAttrs: &framework.DisplayAttributes{
					Name:      "Client secret",
					Sensitive: true,
				},
			},
			fieldBaseURL: {
				Type:        framework.TypeString,
				Default:     defaultBaseURL,
				Description: `Naver Commerce API base URL; "https://api.commerce.naver.com/partner" for agencies. HTTPS only, except plain HTTP to a loopback address for testing. Changing it requires client_secret in the same write.`,
				DisplayAttrs: &framework.DisplayAttributes{
					Name: "Base URL",
				},
			},
			fieldRequestTimeout: {
				Type:        framework.TypeDurationSecond,
				Default:     int(defaultRequestTimeout.Seconds()),
				Description: "Time limit for getting one token from Naver, retries included (1s to 60s).",
				DisplayAttrs: &framework.DisplayAttributes{
					Name: "Request timeout",
				},
			},
			fieldMaxRetries: {
				Type:        framework.TypeInt,
				Default:     defaultMaxRetries,
				Description: "Retries of a token request after a network error, 429 or 5xx (0 to 5). Refusals (400, 401, 403) are never retried.",
				DisplayAttrs: &framework.DisplayAttributes{
					Name: "Max retries",
				},
			},
			fieldProxyURL: {
				Type:        framework.TypeString,
				Description: "HTTP(S) proxy for requests to Naver, e.g. one with an IP address registered for the application. Empty: HTTPS_PROXY/HTTP_PROXY of the Vault server's environment.",
				DisplayAttrs: &framework.DisplayAttributes{
					Name: "Proxy URL",
				},
			},
			fieldBackgroundRefresh: {
				Type:        framework.TypeBool,
				Default:     true,
				Description: "Renew tokens that are in use before reads need them: a token read since it was fetched is renewed when it enters Naver's 30-minute window, and reads keep getting the cached token meanwhile. Tokens nobody reads are never renewed.",
				DisplayAttrs: &framework.DisplayAttributes{
					Name: "Background refresh",
				},
			},
			fieldMaxRequestsHour: {
				Type:        framework.TypeInt,
				Default:     defaultMaxRequestsHour,
				Description: fmt.Sprintf("Most token requests one token (type and account) may send to Naver in any hour, retries and verification included (1 to %d). Over it, reads fail fast or serve the still-valid cached token with a warning, so no bug, clock problem or retry storm can earn Naver's penalty. While Naver fails, a token's requests are spread over the hour: %d at once, then one every hour / (this - %d), so a storm never spends the budget in minutes.", maxMaxRequestsHour, core.PaceBurst, core.PaceBurst),
				DisplayAttrs: &framework.DisplayAttributes{
					Name: "Max token requests per hour",
				},
			},
			fieldMaxAppRequests: {
				Type:        framework.TypeInt,
				Default:     0,
				Description: fmt.Sprintf("Most token requests the whole application may send to Naver in any hour, over every token, retries, verification and background renewals included (0 to %d; 0, the default, is automatic: %d + %d per token Naver issued a token to within the last 3 hours, a token counting while requests sent when it was still count). Naver judges the application, not the token. Reads of tokens apps wait on may use all of it, background renewals %d%%.", maxMaxAppRequests, core.AppBudgetFloor, core.AppBudgetPerKey, int(core.BackgroundShare*100)),
				DisplayAttrs: &framework.DisplayAttributes{
					Name: "Max application requests per hour",
				},
			},
			fieldRenewalSpread: {
				Type:        framework.TypeDurationSecond,
				Default:     int(renewSpreadWidth / time.Second),
				Description: fmt.Sprintf("How far into Naver's 30-minute window each token's renewal may move, at a point stable for the token, so that tokens fetched together (sellers onboarded at once, the end of an outage) are not renewed together forever (0 to %s; 0 renews as soon as the window opens). A token is renewed with 10 minutes or more left; after an outage, tokens whose renewal failed in it renew at their point of the next renewal_spread from Naver's recovery (with 5 minutes or more left), not all at once.", renewSpreadWidth),
				DisplayAttrs: &framework.DisplayAttributes{
					Name: "Renewal spread",
				},
			},
			fieldVerifyConnection: {
				Type:        framework.TypeBool,
				Default:     true,
				Description: "Request a SELF token with the new credentials before storing them, and refuse the write if Naver refuses. The token is kept in the cache. Not stored.",
				DisplayAttrs: &framework.DisplayAttributes{
					Name: "Verify connection",
				},
			},
		},
		ExistenceCheck: b.pathConfigExistenceCheck,
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback: b.pathConfigRead,
				Summary:  "Read the configuration; the client secret is never returned.",
				DisplayAttrs: &framework.DisplayAttributes{
					OperationSuffix: "configuration",
				},
				Responses: map[int][]framework.Response{
					200: {{Description: "OK", Fields: configResponseFields}},
				},
			},
			logical.CreateOperation: &framework.PathOperation{
				Callback:                    b.pathConfigWrite,
				Summary:                     "Configure the application's credentials and how to reach Naver.",
				Responses:                   noContent("The configuration was stored."),
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
				DisplayAttrs: &framework.DisplayAttributes{
					OperationVerb: "configure",
				},
			},
			logical.UpdateOperation: &framework.PathOperation{
				Callback:                    b.pathConfigWrite,
				Summary:                     "Configure the application's credentials and how to reach Naver.",
				Responses:                   noContent("The configuration was stored."),
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
				DisplayAttrs: &framework.DisplayAttributes{
					OperationVerb: "configure",
				},
			},
			logical.DeleteOperation: &framework.PathOperation{
				Callback:                    b.pathConfigDelete,
				Summary:                     "Delete the configuration and every cached token.",
				Responses:                   noContent("The configuration and cached tokens were deleted."),
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
				DisplayAttrs: &framework.DisplayAttributes{
					OperationSuffix: "configuration",
				},
			},
		},
		HelpSynopsis:    "Configure the Naver Commerce application whose tokens this engine issues.",
		HelpDescription: strings.TrimSpace(pathConfigHelp),
	}
}

const pathConfigHelp = `
Stores the application's client ID and client secret (a bcrypt salt, never returned) and how
to reach Naver. Unless verify_connection=false, a write first requests a SELF token with the
new credentials and stores nothing if Naver refuses them. Changing client_id, client_secret
or base_url drops every cached token: Naver invalidates an old secret at once, and a token of
other credentials must never be served. Deleting the config drops the cached tokens as well.
`

var configResponseFields = map[string]*framework.FieldSchema{
	fieldClientID:          {Type: framework.TypeString, Description: "Application ID."},
	fieldBaseURL:           {Type: framework.TypeString, Description: "Naver Commerce API base URL."},
	fieldRequestTimeout:    {Type: framework.TypeInt, Description: "Time limit for one token request, in seconds."},
	fieldMaxRetries:        {Type: framework.TypeInt, Description: "Retries after a network error, 429 or 5xx."},
	fieldProxyURL:          {Type: framework.TypeString, Description: "Proxy for requests to Naver, password redacted."},
	fieldBackgroundRefresh: {Type: framework.TypeBool, Description: "Whether tokens in use are renewed ahead of reads."},
	fieldMaxRequestsHour:   {Type: framework.TypeInt, Description: "Most token requests per token per hour."},
	fieldMaxAppRequests:    {Type: framework.TypeInt, Description: "Most token requests of the whole application per hour; 0: automatic."},
	fieldRenewalSpread:     {Type: framework.TypeDurationSecond, Description: "How far into Naver's window renewals spread, in seconds."},
}

func (b *backend) pathConfigExistenceCheck(ctx context.Context, req *logical.Request, _ *framework.FieldData) (bool, error) {
	cfg, err := readConfig(ctx, req.Storage)
	return cfg != nil, err
}

func (b *backend) pathConfigRead(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	st, err := b.getConfig(ctx, req.Storage)
	if err != nil || st == nil {
		return nil, err
	}
	cfg := st.config
	return &logical.Response{Data: map[string]any{
		fieldClientID:          cfg.ClientID,
		fieldBaseURL:           cfg.BaseURL,
		fieldRequestTimeout:    int64(cfg.RequestTimeout / time.Second),
		fieldMaxRetries:        cfg.MaxRetries,
		fieldProxyURL:          redactedURL(cfg.ProxyURL),
		fieldBackgroundRefresh: !cfg.NoBackgroundRefresh,
		fieldMaxRequestsHour:   cfg.maxRequestsPerHour(),
		fieldMaxAppRequests:    cfg.MaxAppRequestsPerHour,
		fieldRenewalSpread:     int64(cfg.renewalSpread() / time.Second),
	}}, nil
}

func (b *backend) pathConfigWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	// One config write at a time, so none merges into a config another is replacing.
	b.configWriteMu.Lock()
	defer b.configWriteMu.Unlock()
	old, err := readConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	cfg, err := configFromRequest(old, d)
	if err != nil {
		return logical.ErrorResponse(err.Error()), nil
	}
	if _, given := d.Raw[fieldClientSecret]; old != nil && old.BaseURL != cfg.BaseURL && !given {
		// The next token request signs with the stored secret and sends the signature to
		// the new address: pointing base_url elsewhere must take knowing the secret.
		return logical.ErrorResponse("%s is required when %s changes: the signature made with it is sent to the new address", fieldClientSecret, fieldBaseURL), nil
	}
	credentialsChanged := old == nil || old.credentialsID() != cfg.credentialsID()
	connectionChanged := credentialsChanged || old.ProxyURL != cfg.ProxyURL

	st, err := b.newConfigState(cfg)
	if err != nil {
		return logical.ErrorResponse("%s: %s", fieldProxyURL, err), nil
	}
	var verified *cachedToken
	if d.Get(fieldVerifyConnection).(bool) && connectionChanged {
		done := b.tokens.verify(ctx, req.Storage, st)
		switch {
		case done.Fresh:
			// Naver would hand back the SELF token cached under these very credentials (only
			// the proxy changed, or the same config is written again after a delete): a token
			// request would be needless (Naver penalises those), and the credentials were
			// proven when that token was issued. Reaching the gateway is what needs proving.
			checkCtx, cancel := context.WithTimeout(ctx, cfg.RequestTimeout)
			err := st.client.checkConnection(checkCtx)
			cancel()
			if err != nil {
				return nil, tokenRequestError(fmt.Sprintf("%s: the new %s was not stored; Naver's gateway could not be reached through it", fieldVerifyConnection, fieldProxyURL), err, false)
			}
		case done.Err != nil:
			return nil, tokenRequestError(fmt.Sprintf("%s: the new credentials were not stored; Naver refused a SELF token request", fieldVerifyConnection), done.Err, false)
		default:
			verified = done.Token
		}
	}

	entry, err := logical.StorageEntryJSON(configStorageKey, cfg)
	if err != nil {
		return nil, err
	}
	if err := req.Storage.Put(ctx, entry); err != nil {
		return nil, fmt.Errorf("storing config: %w", err)
	}
	// Naver ends the tokens of a secret it re-issued (or of another application) at once:
	// those are retired. A new base_url alone ends nothing at Naver: the tokens of the old
	// address stay stored as they are, served again if the old address comes back (a typo
	// fixed), where a request would only get them back — a needless one.
	secretChanged := old == nil || old.ClientID != cfg.ClientID || old.ClientSecret != cfg.ClientSecret
	b.replaceConfig(req.Storage, st, secretChanged)
	if verified != nil {
		b.tokens.seed(req.Storage, verified)
	}
	return nil, nil
}

// configFromRequest merges the request into old (nil on create) and validates the result.
// Every error names its field.
func configFromRequest(old *naverConfig, d *framework.FieldData) (*naverConfig, error) {
	cfg := &naverConfig{
		BaseURL:        defaultBaseURL,
		RequestTimeout: defaultRequestTimeout,
		MaxRetries:     defaultMaxRetries,
	}
	if old != nil {
		*cfg = *old
	}
	cfg.Format = configFormat

	if v, ok, err := d.GetOkErr(fieldClientID); err != nil {
		return nil, fieldValueError(d, fieldClientID)
	} else if ok {
		cfg.ClientID = strings.TrimSpace(v.(string))
	}
	if cfg.ClientID == "" {
		return nil, fmt.Errorf("%s is required", fieldClientID)
	}
	if err := validateClientID(cfg.ClientID); err != nil {
		return nil, fmt.Errorf("%s: %w", fieldClientID, err)
	}

	if v, ok, err := d.GetOkErr(fieldClientSecret); err != nil {
		return nil, fmt.Errorf("%s: must be a string", fieldClientSecret)
	} else if ok {
		cfg.ClientSecret = strings.TrimSpace(v.(string))
	}
	if cfg.ClientSecret == "" {
		return nil, fmt.Errorf("%s is required", fieldClientSecret)
	}
	if _, err := parseClientSecret(cfg.ClientSecret); err != nil {
		// The length (never the value) tells a whole bcrypt hash (60) or a clipped copy apart.
		if n := utf8.RuneCountInString(cfg.ClientSecret); n != clientSecretLength {
			return nil, fmt.Errorf("%s: %w; the value given has %d characters, a secret from the API center has %d",
				fieldClientSecret, err, n, clientSecretLength)
		}
		return nil, fmt.Errorf("%s: %w", fieldClientSecret, err)
	}

	if v, ok, err := d.GetOkErr(fieldBaseURL); err != nil {
		return nil, fieldValueError(d, fieldBaseURL)
	} else if ok {
		u, err := validateBaseURL(v.(string))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", fieldBaseURL, err)
		}
		cfg.BaseURL = u
	}

	if v, ok, err := d.GetOkErr(fieldRequestTimeout); err != nil {
		return nil, fieldValueError(d, fieldRequestTimeout)
	} else if ok {
		timeout := time.Duration(v.(int)) * time.Second
		if timeout < time.Second || timeout > maxRequestTimeout {
			return nil, fmt.Errorf("%s: must be from 1s to %s", fieldRequestTimeout, maxRequestTimeout)
		}
		cfg.RequestTimeout = timeout
	}

	if v, ok, err := d.GetOkErr(fieldMaxRetries); err != nil {
		return nil, fieldValueError(d, fieldMaxRetries)
	} else if ok {
		n := v.(int)
		if n < 0 || n > maxMaxRetries {
			return nil, fmt.Errorf("%s: must be from 0 to %d", fieldMaxRetries, maxMaxRetries)
		}
		cfg.MaxRetries = n
	}

	if v, ok, err := d.GetOkErr(fieldProxyURL); err != nil {
		return nil, fieldValueError(d, fieldProxyURL)
	} else if ok {
		p, err := validateProxyURL(v.(string))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", fieldProxyURL, err)
		}
		cfg.ProxyURL = p
	}

	if v, ok, err := d.GetOkErr(fieldBackgroundRefresh); err != nil {
		return nil, fieldValueError(d, fieldBackgroundRefresh)
	} else if ok {
		cfg.NoBackgroundRefresh = !v.(bool)
	}

	if v, ok, err := d.GetOkErr(fieldMaxRequestsHour); err != nil {
		return nil, fieldValueError(d, fieldMaxRequestsHour)
	} else if ok {
		n := v.(int)
		if n < 1 || n > maxMaxRequestsHour {
			return nil, fmt.Errorf("%s: must be from 1 to %d", fieldMaxRequestsHour, maxMaxRequestsHour)
		}
		cfg.MaxRequestsPerHour = n
	}

	if v, ok, err := d.GetOkErr(fieldMaxAppRequests); err != nil {
		return nil, fmt.Errorf("%s: %w", fieldMaxAppRequests, err)
	} else if ok {
		n := v.(int)
		if n < 0 || n > maxMaxAppRequests {
			return nil, fmt.Errorf("%s: must be from 0 (automatic) to %d", fieldMaxAppRequests, maxMaxAppRequests)
		}
		cfg.MaxAppRequestsPerHour = n
	}

	if v, ok, err := d.GetOkErr(fieldRenewalSpread); err != nil {
		return nil, fmt.Errorf("%s: %w", fieldRenewalSpread, err)
	} else if ok {
		spread := time.Duration(v.(int)) * time.Second
		if spread < 0 || spread > renewSpreadWidth {
			return nil, fmt.Errorf("%s: must be from 0 to %s", fieldRenewalSpread, renewSpreadWidth)
		}
		cfg.RenewalSpread = &spread
	}

	if _, _, err := d.GetOkErr(fieldVerifyConnection); err != nil {
		return nil, fieldValueError(d, fieldVerifyConnection)
	}
	return cfg, nil
}

func (b *backend) pathConfigDelete(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	b.configWriteMu.Lock()
	defer b.configWriteMu.Unlock()
	if err := req.Storage.Delete(ctx, configStorageKey); err != nil {
		return nil, fmt.Errorf("deleting config: %w", err)
	}
	// Stored tokens stay until they expire: they are served only under the credentials
	// they came from, so only a config with those very credentials serves them again.
	b.replaceConfig(req.Storage, nil, false)
	return nil, nil
}
