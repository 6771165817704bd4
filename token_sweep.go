package navercommerce

import (
	"context"
	"hash/maphash"
	"math"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/internal/core"
)

// The storage side of the core's sweep: reading the stored token entries in parts, and
// remembering what each said so that the next sweep decodes only the entries that changed.

// sweptKey names a token entry in sweptSums and sweepSeen: by the ID its storage key spells,
// not by the storage key, as a string per stored token was most of sweptSums' size.
type sweptKey struct {
	id   core.StoreID
	name string // the storage key, only when it spells no ID (a foreign write's)
}

func sweptKeyOf(storageKey string) sweptKey {
	if id, ok := core.ParseStoreID(storageKey); ok {
		return sweptKey{id: id}
	}
	return sweptKey{name: storageKey}
}

// sweptEntry keeps knownUntil as Unix nanoseconds (see unixNanos): 8 bytes, not the 24 of a
// time.Time, in an entry for every stored token.
type sweptEntry struct {
	sum        uint64
	knownUntil int64
	issuedAt   int64
}

// unixNanos is t in Unix nanoseconds, saturated where int64 ends (before 1678, after 2262).
// The zero time is 0, so that a sweptEntry's zero value knows no time, and fromUnixNanos
// turns 0 back into the zero time (1970-01-01 too: no clock the plugin runs under tells
// those apart, nor the saturated times from theirs).
func unixNanos(t time.Time) int64 {
	switch {
	case t.IsZero():
		return 0
	case t.Before(time.Unix(0, math.MinInt64)):
		return math.MinInt64
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	return t.UnixNano()
}

func fromUnixNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// sweptSums is, per token entry the sweep decoded, a checksum of it and when what it says
// stops mattering, so that the next sweep decodes only the entries that changed. Entries by
// ID and by name are kept apart: one map keyed by sweptKey had 64-byte slots, one for every
// stored token, when nearly every name spells an ID.
type sweptSums struct {
	byID   map[core.StoreID]sweptEntry
	byName map[string]sweptEntry
}

func (s *sweptSums) get(k sweptKey) (sweptEntry, bool) {
	if k.name != "" {
		e, ok := s.byName[k.name]
		return e, ok
	}
	e, ok := s.byID[k.id]
	return e, ok
}

func (s *sweptSums) set(k sweptKey, e sweptEntry) {
	if k.name != "" {
		s.byName[k.name] = e
		return
	}
	s.byID[k.id] = e
}

func (s *sweptSums) delete(k sweptKey) {
	if k.name != "" {
		delete(s.byName, k.name)
		return
	}
	delete(s.byID, k.id)
}

// keepOnly forgets the entries not in seen.
func (s *sweptSums) keepOnly(seen map[sweptKey]struct{}) {
	for id := range s.byID {
		if _, ok := seen[sweptKey{id: id}]; !ok {
			delete(s.byID, id)
		}
	}
	for name := range s.byName {
		if _, ok := seen[sweptKey{name: name}]; !ok {
			delete(s.byName, name)
		}
	}
}

// sweep reads the next part of storage's entries of tokens for the core (listing them when
// a sweep begins), decoding only those that changed since the last sweep read them (at
// thousands of sellers decoding was most of its cost). A part ends after sweepPart entries
// or sweepPartTime, so one periodic run never spends long on it, except when a read waits
// for the sweep (the automatic budget right after a start): then the parts follow at once,
// read by the goroutine that stepped the core.
func (c *tokenCache) sweep(s logical.Storage) {
	// Swept is stepped once sweepMu is released: what it decides may be the next part (a
	// request waits for the sweep), read by this goroutine at once.
	c.step(nil, c.sweepPart(s))
}

// sweepPart reads the next part of the sweep.
func (c *tokenCache) sweepPart(s logical.Storage) core.Swept {
	c.sweepMu.Lock()
	defer c.sweepMu.Unlock()
	if c.sweepKeys == nil {
		keys, err := logical.CollectKeysWithPrefix(c.ctx, s, tokenStoragePrefix)
		if err != nil {
			c.logger.Warn("listing cached tokens failed", "error", err)
			return core.Swept{Now: c.now(), Done: true, Failed: true}
		}
		c.sweepKeys, c.sweepPos, c.sweepSeen = keys, 0, make(map[sweptKey]struct{}, len(keys))
	}
	deadline, now := time.Now().Add(sweepPartTime), c.now()
	var batch []core.SweptEntry
	for c.sweepPos < len(c.sweepKeys) && len(batch) < sweepPart && time.Now().Before(deadline) && c.ctx.Err() == nil {
		name := c.sweepKeys[c.sweepPos]
		c.sweepPos++
		entry, err := s.Get(c.ctx, name)
		if err != nil || entry == nil {
			continue
		}
		k := sweptKeyOf(name)
		c.sweepSeen[k] = struct{}{}
		sum := maphash.Bytes(c.sweptSeed, entry.Value)
		c.sweptMu.Lock()
		prev, ok := c.sweptSums.get(k)
		c.sweptMu.Unlock()
		se := core.SweptEntry{StorageKey: name}
		// An unchanged entry is decoded again once what it says has stopped mattering: the
		// core then decides its end on the entry itself (it may keep the fact of its token).
		if known := fromUnixNanos(prev.knownUntil); ok && prev.sum == sum && now.Before(known) {
			se.KnownUntil, se.IssuedAt = known, fromUnixNanos(prev.issuedAt)
		} else if tok, err := decodeToken(entry); err != nil {
			se.Undecodable, se.Newer = true, isNewerFormat(err)
			if !se.Newer {
				// Remembered, as the delete the core asks for deletes only what a sweep read.
				// An entry of a newer format is not: an unchanged entry is passed on as known
				// until a time, which it has none of, and the next sweep would delete it.
				c.sweptMu.Lock()
				c.sweptSums.set(k, sweptEntry{sum: sum})
				c.sweptMu.Unlock()
			}
		} else {
			se.Token = tok
			c.sweptMu.Lock()
			c.sweptSums.set(k, sweptEntry{sum: sum, knownUntil: unixNanos(tok.KnownUntil()), issuedAt: unixNanos(core.IssuedAt(tok))})
			c.sweptMu.Unlock()
		}
		batch = append(batch, se)
	}
	done := c.sweepPos >= len(c.sweepKeys)
	failed := c.ctx.Err() != nil
	if done || failed {
		if done {
			c.sweptMu.Lock()
			c.sweptSums.keepOnly(c.sweepSeen)
			c.sweptMu.Unlock()
		}
		c.sweepKeys, c.sweepSeen = nil, nil
	}
	// The part is judged at the time it was read at: an unchanged entry handed over undecoded
	// because its time had not passed must not be stale to the core.
	return core.Swept{Now: now, Entries: batch, Done: done || failed, Failed: failed}
}

// ensureSwept reads, once after the start, what storage holds of tokens (the parts of the
// sweep not read yet), so that status and metrics know the tokens stored before the start.
// A part another goroutine is reading is waited for, not read again.
func (c *tokenCache) ensureSwept(ctx context.Context, s logical.Storage) {
	for ctx.Err() == nil {
		c.mu.Lock()
		known := c.m.Knowledge().StoredKnown
		c.mu.Unlock()
		if known {
			return
		}
		c.step(s, core.SweepNow{Now: c.now()})
		c.mu.Lock()
		k, sweeping, partOut := c.m.Knowledge(), c.m.Sweeping(), c.m.SweepPartOut()
		c.mu.Unlock()
		switch {
		case k.StoredKnown:
			return
		case !sweeping:
			return // the sweep failed (logged): status says what it does not know
		case partOut:
			select { // another goroutine reads a part: wait for it
			case <-ctx.Done():
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
}
