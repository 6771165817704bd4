package navercommerce

import (
	"sync/atomic"
	"time"

	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"
)

// replicationStateTTL is how long a replication state is reused. The SDK asks for it on every
// request to decide whether to forward (framework.Backend.HandleRequest); in an external
// plugin that is a gRPC round trip back to Vault, a third of a warm token read. The state
// changes only when a cluster is promoted or demoted, and a request that slips through in
// the moment after fails its storage write with ErrReadOnly, which Vault forwards anyway.
const replicationStateTTL = 5 * time.Second

// cachedReplicationState is the SystemView Vault gave the backend, with ReplicationState
// remembered for replicationStateTTL.
type cachedReplicationState struct {
	logical.SystemView
	now    func() time.Time
	cached atomic.Pointer[replicationStateAt]
}

type replicationStateAt struct {
	state consts.ReplicationState
	at    time.Time
}

func (s *cachedReplicationState) ReplicationState() consts.ReplicationState {
	now := s.now()
	if c := s.cached.Load(); c != nil && now.Sub(c.at) < replicationStateTTL && !now.Before(c.at) {
		return c.state
	}
	state := s.SystemView.ReplicationState()
	s.cached.Store(&replicationStateAt{state: state, at: now})
	return state
}
