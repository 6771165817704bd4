package modelcheck

import (
	"fmt"
	"time"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/internal/core"
)

// Naver's rules, as the model keeps them.
const (
	naverLifetime  = 3 * time.Hour
	reuseThreshold = 30 * time.Minute
	retryAfter     = 90 * time.Second
)

// ntok is a token Naver issued.
type ntok struct {
	access  string
	key     core.Key
	issued  time.Time
	expires time.Time
	dead    bool // the seller re-authorised the application, or the secret changed
}

// naverModel is Naver for one application: its current secret, the token of each key, and
// every attempt that reached it.
type naverModel struct {
	secret string
	seq    int
	cur    map[core.Key]*ntok
	all    map[string]*ntok
	sent   []attempt
}

type attempt struct {
	key   core.Key
	at    time.Time
	creds string
}

func (n *naverModel) init() {
	n.secret = "c1"
	n.cur = map[core.Key]*ntok{}
	n.all = map[string]*ntok{}
}

// rotate makes secret the application's: every token of the old one is dead at once.
func (n *naverModel) rotate(secret string) {
	if secret == n.secret || secret == "bad" {
		return
	}
	n.secret = secret
	for _, t := range n.all {
		t.dead = true
	}
	n.cur = map[core.Key]*ntok{}
}

// kill ends key's token at Naver (the seller authorised the application again).
func (n *naverModel) kill(k core.Key) {
	if t := n.cur[k]; t != nil {
		t.dead = true
		delete(n.cur, k)
	}
}

// Outcomes Naver's answer to an attempt may have.
const (
	outcomeOK      = "ok"
	outcome503     = "503"
	outcome429     = "429"
	outcomeTimeout = "timeout"
	// outcomeShort: Naver answers with a new token of shortLife (a strange answer the
	// plugin must bound and count all the same).
	outcomeShort = "short"
	shortLife    = 20 * time.Minute
)

// answer is Naver's answer at now to an attempt of request p: a token (new, or handed back)
// or an error. reached says the attempt reached Naver (and counts there).
func (w *World) answerAttempt(p *pend, outcome string) (tok *core.Issued, failure *naverError, reached bool) {
	n := &w.naver
	s := p.effect.(core.Send)
	if p.endpoint == "e-unreachable" {
		return nil, &naverError{outcome: core.Outcome{}, text: "no answer from e-unreachable", endpoint: p.endpoint}, false
	}
	if outcome == outcomeTimeout {
		return nil, &naverError{outcome: core.Outcome{}, text: "no answer", endpoint: p.endpoint}, false
	}
	w.check.attemptReached(w, s.Key, p.creds)
	n.sent = append(n.sent, attempt{key: s.Key, at: w.Now, creds: p.creds})
	switch outcome {
	case outcome503:
		return nil, &naverError{outcome: core.Outcome{Status: 503}, text: "naver answered HTTP 503", endpoint: p.endpoint}, true
	case outcome429:
		w.check.retryAfter[s.Key] = w.Now.Add(retryAfter)
		return nil, &naverError{outcome: core.Outcome{Status: 429, RetryAfter: retryAfter}, text: "naver answered HTTP 429", endpoint: p.endpoint}, true
	}
	if p.creds != n.secret {
		return nil, &naverError{outcome: core.Outcome{Status: 401}, text: "naver answered HTTP 401 GW.AUTHN: invalid client_secret_sign", endpoint: p.endpoint}, true
	}
	if s.Key.AccountID == "x" {
		w.check.accountRefused(w)
		return nil, &naverError{outcome: core.Outcome{Status: 403, AccountRefused: true}, text: "naver answered HTTP 403 GW.AUTHN: account_id \"x\" has not authorised this application", endpoint: p.endpoint}, true
	}
	cur := n.cur[s.Key]
	if outcome == outcomeShort {
		n.seq++
		cur = &ntok{access: fmt.Sprintf("tok%d-%s", n.seq, s.Key.AccountID), key: s.Key, issued: w.Now, expires: w.Now.Add(shortLife)}
		n.cur[s.Key] = cur
		n.all[cur.access] = cur
	} else if cur != nil && !cur.dead && cur.expires.Sub(w.Now) >= reuseThreshold {
		w.check.handedBack(w, cur)
	} else {
		n.seq++
		cur = &ntok{access: fmt.Sprintf("tok%d-%s", n.seq, s.Key.AccountID), key: s.Key, issued: w.Now, expires: w.Now.Add(naverLifetime)}
		n.cur[s.Key] = cur
		n.all[cur.access] = cur
	}
	left := cur.expires.Sub(w.Now)
	return &core.Issued{AccessToken: cur.access, TokenType: "Bearer", ExpiresAt: p.sentAt.Add(left), LatestExpiry: w.Now.Add(left)}, nil, true
}
