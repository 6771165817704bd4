package navercommerce

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"
)

// countingSystemView counts what would be gRPC round trips to Vault in an external plugin.
type countingSystemView struct {
	logical.StaticSystemView
	replicationCalls atomic.Int32
}

func (s *countingSystemView) ReplicationState() consts.ReplicationState {
	s.replicationCalls.Add(1)
	return s.StaticSystemView.ReplicationState()
}

func TestWarmReadsDoNotAskForReplicationState(t *testing.T) {
	env := newTestEnv(t)
	sys := &countingSystemView{StaticSystemView: logical.StaticSystemView{DefaultLeaseTTLVal: 768 * 3600e9, MaxLeaseTTLVal: 768 * 3600e9}}
	b := newBackend(backendOptions{now: env.clock.Now})
	conf := logical.TestBackendConfig()
	conf.StorageView = env.storage
	conf.System = sys
	conf.Logger = hclog.New(&hclog.LoggerOptions{Output: &env.logs, Level: hclog.Trace})
	if err := b.Setup(context.Background(), conf); err != nil {
		t.Fatal(err)
	}
	env.b = b
	env.configure()
	env.mustWrite("roles/app", map[string]any{"type": "SELF"})
	start := sys.replicationCalls.Load()
	for range 100 {
		env.readToken("app")
	}
	if calls := sys.replicationCalls.Load() - start; calls > 1 {
		t.Errorf("100 warm reads asked Vault for the replication state %d times, want at most 1", calls)
	}
}
