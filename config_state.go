package navercommerce

import (
	"context"
	"fmt"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/navercommerce/vault-plugin-secrets-navercommerce/internal/core"
)

// The mount's config in memory: loaded once, published over no newer change, with the
// Naver client built for it.

// configState is a config with what every token read derives from it, made once; never
// modified once published.
type configState struct {
	config *naverConfig
	client *naverClient
	policy cachePolicy
}

// cachePolicy is what the token cache needs of a config besides the core's part.
type cachePolicy struct {
	credentials string // credentialsID of the config
}

// core is what the decision core needs of the config.
func (st *configState) core() core.Config {
	cfg := st.config
	return core.Config{
		ClientID:    cfg.ClientID,
		Credentials: st.policy.credentials,
		Endpoint:    credentialsID("endpoint", comparableBaseURL(cfg.BaseURL), cfg.ProxyURL),
		Ahead:       !cfg.NoBackgroundRefresh,
		PerHour:     cfg.maxRequestsPerHour(),
		AppPerHour:  cfg.MaxAppRequestsPerHour,
		Spread:      cfg.renewalSpread(),
		Timeout:     cfg.RequestTimeout,
		MaxRetries:  cfg.MaxRetries,
	}
}

func (b *backend) newConfigState(cfg *naverConfig) (*configState, error) {
	client, err := b.newClient(cfg)
	if err != nil {
		return nil, err
	}
	return &configState{config: cfg, client: client, policy: cachePolicy{credentials: cfg.credentialsID()}}, nil
}

// getConfig returns the mount's config and what derives from it, or nil when unconfigured.
func (b *backend) getConfig(ctx context.Context, s logical.Storage) (*configState, error) {
	if st := b.current.Load(); st != nil {
		return st, nil
	}
	b.loadMu.Lock()
	defer b.loadMu.Unlock()
	if st := b.current.Load(); st != nil {
		return st, nil
	}
	gen := b.configGen.Load()
	cfg, err := readConfig(ctx, s)
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		// Deleted on another node (this one learnt it from an invalidation): the tokens
		// cached here stop being served too.
		b.publishConfig(ctx, s, gen, nil)
		return nil, nil
	}
	st, err := b.newConfigState(cfg)
	if err != nil {
		return nil, err
	}
	b.publishConfig(ctx, s, gen, st)
	return st, nil
}

// publishConfig makes st current unless a write, delete or invalidation came after gen was
// read: what a load read may already be stale, and must never replace a newer config.
func (b *backend) publishConfig(ctx context.Context, s logical.Storage, gen uint64, st *configState) bool {
	b.publishMu.Lock()
	defer b.publishMu.Unlock()
	if b.configGen.Load() != gen {
		return false
	}
	if st != nil {
		b.current.Store(st)
	}
	b.tokens.setConfig(s, st, false, false)
	return true
}

// replaceConfig makes st (nil: unconfigured) current, written on this node, and outdates
// every load in progress. retire: the write changed the credentials.
func (b *backend) replaceConfig(s logical.Storage, st *configState, retire bool) {
	b.publishMu.Lock()
	defer b.publishMu.Unlock()
	b.configGen.Add(1)
	b.current.Store(st)
	b.tokens.setConfig(s, st, retire, true)
}

// forgetConfig outdates the config in memory (another node changed it): the next use loads
// it again; unchanged credentials keep what is cached and in flight.
func (b *backend) forgetConfig() {
	b.publishMu.Lock()
	defer b.publishMu.Unlock()
	b.configGen.Add(1)
	b.current.Store(nil)
}

func readConfig(ctx context.Context, s logical.Storage) (*naverConfig, error) {
	entry, err := s.Get(ctx, configStorageKey)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	if entry == nil {
		return nil, nil
	}
	cfg := new(naverConfig)
	if err := decodeEntry(entry, "config", cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

func (b *backend) newClient(cfg *naverConfig) (*naverClient, error) {
	secret, err := parseClientSecret(cfg.ClientSecret)
	if err != nil {
		// Only a corrupted storage entry gets here; the write path validated it.
		return nil, fmt.Errorf("stored %s: %w", fieldClientSecret, err)
	}
	var logger = b.Logger()
	return newNaverClient(naverClientConfig{
		baseURL:    cfg.BaseURL,
		clientID:   cfg.ClientID,
		secret:     secret,
		maxRetries: cfg.MaxRetries,
		proxyURL:   cfg.ProxyURL,
		transport:  b.transport,
		tlsConfig:  b.tlsConfig,
		retryWait:  b.retryWait,
		digest:     b.digest,
		now:        b.now,
		logger:     logger.Named("naver"),
	})
}
