package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/hashicorp/vault/sdk/logical"
)

// The storage every backend of an application runs on: Vault's in-memory storage, with
// the faults the schedule injects and a note of what is stored.

// storageView is a backend's view of its app's storage: it fails operations while a
// storage fault is active, stops working when its backend is replaced (a restarted node
// cannot write), and is where concurrent actions are started (gates).
type storageView struct {
	a      *app
	under  logical.Storage
	closed atomic.Bool
	ops    atomic.Uint64
}

func (s *storageView) fail(op, key string) error {
	if s.closed.Load() {
		return errShutDown
	}
	w := s.a.w
	n := s.ops.Add(1)
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	for _, f := range w.faults {
		if f.kind != faultStorage || f.app != s.a.idx || !now.Before(f.until) {
			continue
		}
		// S names the operations, and after "@" the prefix of the keys they fail on.
		ops, prefix, _ := strings.Cut(f.a.S, "@")
		if !strings.Contains(ops, op) || !strings.HasPrefix(key, prefix) {
			continue
		}
		if hash(w.seed, uint64(s.a.idx), n)%uint64(f.a.N) == 0 {
			w.stats.Faults["storage-"+op]++
			if prefix != "" {
				w.stats.Faults["storage-"+op+"@"+prefix]++
			}
			w.storageFaults.Add(1)
			s.a.lastStorageFault = now
			s.a.noteStorageFault(key, now)
			return fmt.Errorf("sim: injected storage failure on %s %s", op, key)
		}
	}
	return nil
}

func (s *storageView) List(ctx context.Context, prefix string) ([]string, error) {
	if err := s.fail("list", prefix); err != nil {
		return nil, err
	}
	keys, err := s.under.List(ctx, prefix)
	s.a.w.atGate("list:" + prefix)
	return keys, err
}

func (s *storageView) Get(ctx context.Context, key string) (*logical.StorageEntry, error) {
	if err := s.fail("get", key); err != nil {
		return nil, err
	}
	e, err := s.under.Get(ctx, key)
	s.a.w.atGate("get:" + key)
	return e, err
}

func (s *storageView) Put(ctx context.Context, e *logical.StorageEntry) error {
	if err := s.fail("put", e.Key); err != nil {
		if !errors.Is(err, errShutDown) {
			s.noteTokenEntry(e, false)
		}
		return err
	}
	s.a.w.atGate("put:" + e.Key)
	if s.closed.Load() {
		return errShutDown
	}
	err := s.under.Put(ctx, e)
	if err == nil {
		s.noteTokenEntry(e, true)
	}
	return err
}

// noteTokenEntry follows whether storage holds what the backend last put in a token
// entry (whose value names its key).
func (s *storageView) noteTokenEntry(e *logical.StorageEntry, stored bool) {
	if !strings.HasPrefix(e.Key, "tokens/") {
		return
	}
	w := s.a.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if stored {
		delete(s.a.unstored, e.Key)
		return
	}
	var v struct {
		Key struct {
			Type      string `json:"type"`
			AccountID string `json:"account_id"`
		} `json:"key"`
	}
	if json.Unmarshal(e.Value, &v) == nil && v.Key.Type != "" {
		s.a.unstored[e.Key] = v.Key.Type + "|" + v.Key.AccountID
	}
}

func (s *storageView) Delete(ctx context.Context, key string) error {
	if err := s.fail("delete", key); err != nil {
		return err
	}
	s.a.w.atGate("delete:" + key)
	if s.closed.Load() {
		return errShutDown
	}
	err := s.under.Delete(ctx, key)
	if err == nil {
		w := s.a.w
		w.mu.Lock()
		delete(s.a.unstored, key)
		w.mu.Unlock()
	}
	return err
}
