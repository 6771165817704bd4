package navercommercetest

import "time"

// TokenInfo is what the emulator knows of a token it issued: whose it is and when it dies.
type TokenInfo struct {
	ClientID  string
	Type      string
	AccountID string // "" for SELF
	Expires   time.Time
	// Current reports whether Naver would hand this token back to its key now, rather
	// than mint a new one (it is the key's newest token).
	Current bool
}

// Token returns what the emulator knows of token, and false when it never issued it,
// or it expired, or it was revoked (a secret rotation, KillToken). A checker uses it to
// prove that a token served as valid is valid, for as long as it is said to be.
func (e *Emulator) Token(token string) (TokenInfo, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.tokens[token]
	if t == nil || !e.now().Before(t.expires) {
		return TokenInfo{}, false
	}
	return TokenInfo{
		ClientID:  t.key.clientID,
		Type:      t.key.typ,
		AccountID: t.key.accountID,
		Expires:   t.expires,
		Current:   e.current[t.key] == t,
	}, true
}
