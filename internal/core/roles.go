package core

import (
	"slices"
	"sort"
	"time"
)

// roleSet is every role the machine knows, indexed so that which roles name a key is a
// lookup: single-account roles by (type, account), many-seller roles in a list (few).
type roleSet struct {
	// known is set once every stored role was loaded (RolesLoaded): until then, that no
	// known role names a key proves nothing.
	known bool
	// gen changes with every change of the roles, or of the config in force: a key's
	// answer to "does a role name you?" is kept until it does (keyState.namedGen).
	gen    uint32
	byName map[string]Role
	// single names, per type and account, the single-account roles of it: nearly always
	// one (a slice, not a set: 10,000 sellers' roles are 10,000 of these).
	single map[singleKey][]string
	many   map[string]*Role
}

type singleKey struct{ typ, account string }

func (s *roleSet) init() {
	s.gen++
	s.byName = map[string]Role{}
	s.single = map[singleKey][]string{}
	s.many = map[string]*Role{}
}

func (s *roleSet) set(name string, r *Role) {
	s.gen++
	s.remove(name)
	if r == nil {
		return
	}
	s.byName[name] = *r
	if r.ManySellers() {
		many := *r
		s.many[name] = &many
		return
	}
	k := singleKey{r.Type, r.AccountID}
	s.single[k] = append(s.single[k], name)
}

func (s *roleSet) remove(name string) {
	old, ok := s.byName[name]
	if !ok {
		return
	}
	s.gen++
	delete(s.byName, name)
	if old.ManySellers() {
		delete(s.many, name)
		return
	}
	k := singleKey{old.Type, old.AccountID}
	names := slices.DeleteFunc(s.single[k], func(n string) bool { return n == name })
	if len(names) == 0 {
		delete(s.single, k)
	} else {
		s.single[k] = names
	}
}

// naming lists, sorted, the roles that name key of clientID's application.
func (s *roleSet) naming(clientID string, key Key) []string {
	if key.ClientID != clientID {
		return nil
	}
	names := slices.Clone(s.single[singleKey{key.Type, key.AccountID}])
	for n, r := range s.many {
		if r.Names(clientID, key) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// named reports whether any role names key.
func (s *roleSet) named(clientID string, key Key) bool {
	if key.ClientID != clientID {
		return false
	}
	if len(s.single[singleKey{key.Type, key.AccountID}]) > 0 {
		return true
	}
	for _, r := range s.many {
		if r.Names(clientID, key) {
			return true
		}
	}
	return false
}

// tries is what a many-seller role asked of Naver for accounts without a token from it: the
// requests in flight, and those that got no token, until the hour passes. A request that
// got a token does not count: onboarding sellers costs nothing of the bound.
type tries struct {
	inflight map[ReqID]bool
	failed   []time.Time // oldest first
}

func (t *tries) trim(now time.Time) {
	for i := len(t.failed) - 1; i >= 0 && t.failed[i].After(now); i-- {
		t.failed[i] = now // the clock stepped back
	}
	i := 0
	for i < len(t.failed) && now.Sub(t.failed[i]) >= time.Hour {
		i++
	}
	t.failed = t.failed[i:]
}

// full reports whether another try would pass limit, and when one is allowed next (zero:
// when a request in flight ends).
func (t *tries) full(now time.Time, limit int) (bool, time.Time) {
	t.trim(now)
	if len(t.failed)+len(t.inflight) < limit {
		return false, time.Time{}
	}
	if len(t.failed) >= limit {
		return true, t.failed[len(t.failed)-limit].Add(time.Hour)
	}
	return true, time.Time{}
}

func (t *tries) start(req ReqID) {
	if t.inflight == nil {
		t.inflight = map[ReqID]bool{}
	}
	t.inflight[req] = true
}

// end ends the try of req: it counts on for the hour if Naver refused the account; ended
// reports whether it was under way (its place is free for another).
func (t *tries) end(now time.Time, req ReqID, refused bool) (ended bool) {
	if !t.inflight[req] {
		return false
	}
	delete(t.inflight, req)
	if refused {
		t.failed = append(t.failed, now)
	}
	return true
}
