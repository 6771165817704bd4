package navercommerce

import (
	"context"
	"fmt"

	"github.com/hashicorp/vault/sdk/logical"
)

// The mount's config in memory: loaded once, published over no newer change, with the
// Naver client built for it.

// configState is a config with what every token read derives from it, made once; never
// modified once published.
type configState struct {
	config *naverConfig
	client *naverClient
	policy cachePolicy // credentials, background refresh, budget and fetch, for the cache
}

func (b *backend) newConfigState(cfg *naverConfig) (*configState, error) {
	client, err := b.newClient(cfg)
	if err != nil {
		return nil, err
	}
	return &configState{
		config: cfg,
		client: client,
		policy: cachePolicy{
			credentials: cfg.credentialsID(),
			ahead:       !cfg.NoBackgroundRefresh,
			perHour:     cfg.maxRequestsPerHour(),
			appPerHour:  cfg.MaxAppRequestsPerHour,
			timeout:     cfg.RequestTimeout,
			fetch: func(ctx context.Context, key tokenKey) (accessToken, error) {
				return b.fetchToken(ctx, client, cfg, key)
			},
		},
	}, nil
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
	if err != nil || cfg == nil {
		return nil, err
	}
	st, err := b.newConfigState(cfg)
	if err != nil {
		return nil, err
	}
	b.publishConfig(gen, st)
	return st, nil
}

// publishConfig makes st current unless a write, delete or invalidation came after gen was
// read: what a load read may already be stale, and must never replace a newer config.
func (b *backend) publishConfig(gen uint64, st *configState) bool {
	b.publishMu.Lock()
	defer b.publishMu.Unlock()
	if b.configGen.Load() != gen {
		return false
	}
	b.current.Store(st)
	b.tokens.useCredentials(st.policy.credentials)
	b.tokens.useSpread(st.config.renewalSpread())
	return true
}

// replaceConfig makes st (nil: unconfigured) current and outdates every load in progress.
func (b *backend) replaceConfig(st *configState) {
	b.publishMu.Lock()
	defer b.publishMu.Unlock()
	b.configGen.Add(1)
	b.current.Store(st)
	if st != nil {
		b.tokens.useCredentials(st.policy.credentials)
		b.tokens.useSpread(st.config.renewalSpread())
	}
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
