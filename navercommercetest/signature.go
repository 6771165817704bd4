package navercommercetest

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// bcryptAlphabet is bcrypt's own base64 alphabet (not the standard one).
const bcryptAlphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// bcryptB64 is never modified after initialisation. It is not strict on
// purpose: the 22nd salt character carries 4 unused bits, so several strings
// name the same 16-byte salt, exactly as in the reference libraries.
var bcryptB64 = base64.NewEncoding(bcryptAlphabet).WithPadding(base64.NoPadding)

const (
	secretLen   = 29 // "$2a$04$" + 22 salt characters
	prefixLen   = 7  // "$2a$04$"
	saltCharLen = 22
	bcryptLen   = 60
	signLen     = 80 // standard base64 of 60 bytes, no padding needed
)

// clientSecret is a parsed client secret (a bcrypt salt).
type clientSecret struct {
	prefix    string   // version and cost, e.g. "$2a$04$"
	salt      [16]byte // decoded salt
	canonical string   // the salt's 22 characters as the libraries emit them
}

// CheckClientSecret reports whether secret has the shape of a Naver client
// secret: a 29-character bcrypt salt "$2a$NN$" (or $2b$/$2y$) followed by 22
// characters of bcrypt's base64 alphabet, with a cost of 04..31.
func CheckClientSecret(secret string) error {
	_, err := parseClientSecret(secret)
	return err
}

func parseClientSecret(s string) (clientSecret, error) {
	if len(s) != secretLen {
		return clientSecret{}, fmt.Errorf("client secret must be %d characters (a bcrypt salt like $2a$04$...), got %d", secretLen, len(s))
	}
	if s[0] != '$' || s[1] != '2' || !strings.ContainsRune("aby", rune(s[2])) || s[3] != '$' || s[6] != '$' {
		return clientSecret{}, errors.New("client secret must start with $2a$, $2b$ or $2y$ and a two-digit cost")
	}
	cost, err := strconv.Atoi(s[4:6])
	if err != nil || cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return clientSecret{}, fmt.Errorf("client secret cost %q is not in %02d..%02d", s[4:6], bcrypt.MinCost, bcrypt.MaxCost)
	}
	salt, err := decodeSalt(s[prefixLen:])
	if err != nil {
		return clientSecret{}, fmt.Errorf("client secret salt: %w", err)
	}
	return clientSecret{prefix: s[:prefixLen], salt: salt, canonical: bcryptB64.EncodeToString(salt[:])}, nil
}

// decodeSalt decodes 22 bcrypt-base64 characters into the 16-byte salt.
func decodeSalt(s string) ([16]byte, error) {
	var salt [16]byte
	if len(s) != saltCharLen {
		return salt, fmt.Errorf("salt must be %d characters, got %d", saltCharLen, len(s))
	}
	for i := 0; i < len(s); i++ {
		if !strings.ContainsRune(bcryptAlphabet, rune(s[i])) {
			return salt, fmt.Errorf("salt character %d is outside bcrypt's alphabet", i+1)
		}
	}
	b, err := bcryptB64.DecodeString(s)
	if err != nil {
		return salt, fmt.Errorf("decoding salt: %w", err)
	}
	if len(b) != len(salt) {
		return salt, fmt.Errorf("salt decodes to %d bytes, want %d", len(b), len(salt))
	}
	copy(salt[:], b)
	return salt, nil
}

// verifySignature is verifySignatureWith with the emulator's digest, remembering the last
// signature that verified so that a byte-for-byte repeat is not hashed again.
func (e *Emulator) verifySignature(sec clientSecret, clientID, timestamp, sign string) string {
	v := verifiedSignature{secret: sec, clientID: clientID, timestamp: timestamp, sign: sign}
	e.sigMu.Lock()
	hit := e.lastVerified == v
	e.sigMu.Unlock()
	if hit {
		return ""
	}
	if reason := verifySignatureWith(sec, clientID, timestamp, sign, e.digest); reason != "" {
		return reason
	}
	e.sigMu.Lock()
	e.lastVerified = v
	e.sigMu.Unlock()
	return ""
}

// verifySignatureWith checks client_secret_sign independently of any signer:
// it must be standard padded base64 of a 60-character bcrypt string with the
// secret's version and cost, the secret's salt in the canonical form the
// reference libraries (Python bcrypt, bcryptjs) emit, and a hash of
// client_id + "_" + timestamp. It returns "" when the signature is good, or
// the reason it is not, which names no secret material and may be logged.
// digest stands in for bcrypt's hash when set (simulations only; nil: bcrypt).
func verifySignatureWith(sec clientSecret, clientID, timestamp, sign string, digest func(salt, password []byte) []byte) string {
	// Go's base64 decoder skips CR and LF even in strict mode; the real
	// signature never contains them.
	if len(sign) != signLen {
		return fmt.Sprintf("client_secret_sign is %d characters, want %d (base64 of a 60-byte bcrypt string)", len(sign), signLen)
	}
	for i := 0; i < len(sign); i++ {
		c := sign[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=') {
			return fmt.Sprintf("client_secret_sign character %d is outside standard base64", i+1)
		}
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(sign)
	if err != nil {
		return "client_secret_sign is not strict standard base64: " + err.Error()
	}
	if len(raw) != bcryptLen {
		return fmt.Sprintf("client_secret_sign decodes to %d bytes, want %d", len(raw), bcryptLen)
	}
	if string(raw[:prefixLen]) != sec.prefix {
		return "bcrypt version/cost in client_secret_sign differs from the client secret's"
	}
	salt, err := decodeSalt(string(raw[prefixLen : prefixLen+saltCharLen]))
	if err != nil || salt != sec.salt {
		return "bcrypt salt in client_secret_sign differs from the client secret's"
	}
	// Both reference libraries re-encode the salt, so their output always
	// carries its canonical spelling; a signer that copies the secret's last
	// character verbatim would disagree with them.
	if string(raw[prefixLen:prefixLen+saltCharLen]) != sec.canonical {
		return "bcrypt salt in client_secret_sign is not in the canonical form the reference libraries emit"
	}
	if digest != nil {
		want := bcryptB64.EncodeToString(digest(sec.salt[:], []byte(clientID+"_"+timestamp))[:23])
		if string(raw[prefixLen+saltCharLen:]) != want {
			return `digest in client_secret_sign does not match client_id + "_" + timestamp`
		}
		return ""
	}
	if err := bcrypt.CompareHashAndPassword(raw, []byte(clientID+"_"+timestamp)); err != nil {
		return `bcrypt hash in client_secret_sign does not match client_id + "_" + timestamp`
	}
	return ""
}
