package navercommercetest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"
)

// jwtHeader is the header of JWT-shaped tokens. The signature part is random
// bytes: nothing verifies it but the emulator, which looks tokens up by
// value.
const jwtHeader = `{"alg":"HS256","typ":"JWT"}`

// jwtClaims are the claims of JWT-shaped tokens: enough for a client to cap a
// token's expiry by exp, and a random jti so every token differs.
type jwtClaims struct {
	Exp int64  `json:"exp"`
	Iat int64  `json:"iat"`
	Jti string `json:"jti"`
}

// mintLocked returns a new token value: opaque random, or JWT-shaped when
// the mode is on.
func (e *Emulator) mintLocked(now, expires time.Time) (string, error) {
	if !e.jwtTokens {
		return randomString(32)
	}
	return mintJWT(now, expires)
}

// mintJWT returns base64url(header).base64url(claims).base64url(random).
// exp is expires in Unix seconds rounded down, so it never claims more life
// than the token has.
func mintJWT(now, expires time.Time) (string, error) {
	jti, err := randomString(16)
	if err != nil {
		return "", err
	}
	claims, err := json.Marshal(jwtClaims{Exp: expires.Unix(), Iat: now.Unix(), Jti: jti})
	if err != nil {
		return "", fmt.Errorf("encoding JWT claims: %w", err)
	}
	sig := make([]byte, 32)
	if _, err := rand.Read(sig); err != nil {
		return "", fmt.Errorf("reading random bytes: %w", err)
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(jwtHeader)) + "." + enc.EncodeToString(claims) + "." + enc.EncodeToString(sig), nil
}
