package navercommerce

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	//lint:ignore SA1019 bcrypt is built from Blowfish, and Naver's signature is bcrypt.
	"golang.org/x/crypto/blowfish"
)

// Naver's client secret is not a key but a bcrypt salt ("$2a$04$" + 22 characters): the
// signature is bcrypt(client_id + "_" + timestamp) hashed with that salt. x/crypto/bcrypt
// always draws a random salt, so the hash is rebuilt here from x/crypto/blowfish the way
// x/crypto/bcrypt (and OpenBSD's bcrypt, which Python's and Node's libraries follow) does it.

const (
	bcryptAlphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	// bcryptSaltChars is the encoded length of bcrypt's 16-byte salt.
	bcryptSaltChars = 22
	// bcryptMaxPassword is where every bcrypt implementation stops reading the password.
	bcryptMaxPassword = 72
	minSecretCost     = 4
	// Naver issues cost-04 secrets; each step up doubles the work, and a cost above 16 would
	// take seconds per signature on every token request.
	maxSecretCost = 16
)

var bcryptEncoding = base64.NewEncoding(bcryptAlphabet).WithPadding(base64.NoPadding)

// bcrypt's "magic" plaintext, encrypted 64 times under the expensive key schedule.
var bcryptMagic = [24]byte{'O', 'r', 'p', 'h', 'e', 'a', 'n', 'B', 'e', 'h', 'o', 'l', 'd', 'e', 'r', 'S', 'c', 'r', 'y', 'D', 'o', 'u', 'b', 't'}

// clientSecretLength is the length of a Naver client secret: "$2a$04$" and the salt.
const clientSecretLength = 7 + bcryptSaltChars

// errClientSecretFormat never quotes the input: the input is the secret.
var errClientSecretFormat = errors.New(`must be a bcrypt salt: "$2a$", "$2b$" or "$2y$", a two-digit cost, "$", and 22 characters of [./A-Za-z0-9]`)

// clientSecret is a parsed Naver client secret.
type clientSecret struct {
	minor byte // 'a', 'b' or 'y', kept as given: it is echoed in the signature
	cost  int
	salt  []byte // 16 decoded bytes
	// prefix is "$2a$04$" + the canonical encoding of salt. The last of the 22 salt characters
	// carries 2 unused bits; the reference libraries print the salt re-encoded, so do we.
	prefix string
}

// parseClientSecret validates s (after trimming white space) as a bcrypt salt.
func parseClientSecret(s string) (clientSecret, error) {
	s = strings.TrimSpace(s)
	if len(s) != clientSecretLength || s[0] != '$' || s[1] != '2' || s[3] != '$' || s[6] != '$' {
		return clientSecret{}, errClientSecretFormat
	}
	minor := s[2]
	if minor != 'a' && minor != 'b' && minor != 'y' {
		return clientSecret{}, errClientSecretFormat
	}
	if s[4] < '0' || s[4] > '9' || s[5] < '0' || s[5] > '9' {
		return clientSecret{}, errClientSecretFormat
	}
	cost, _ := strconv.Atoi(s[4:6])
	if cost < minSecretCost || cost > maxSecretCost {
		return clientSecret{}, fmt.Errorf("must have a bcrypt cost from %02d to %02d", minSecretCost, maxSecretCost)
	}
	encoded := s[7:]
	if strings.Trim(encoded, bcryptAlphabet) != "" {
		return clientSecret{}, errClientSecretFormat
	}
	salt, err := bcryptEncoding.DecodeString(encoded)
	if err != nil || len(salt) != 16 {
		return clientSecret{}, errClientSecretFormat
	}
	return clientSecret{
		minor:  minor,
		cost:   cost,
		salt:   salt,
		prefix: s[:7] + bcryptEncoding.EncodeToString(salt),
	}, nil
}

// hash returns the 60-character bcrypt string of password under this salt.
func (cs clientSecret) hash(password []byte) ([]byte, error) {
	if len(password) == 0 || len(password) >= bcryptMaxPassword {
		// The trailing NUL must fit in the 72 bytes, or implementations disagree.
		return nil, fmt.Errorf("password must be 1 to %d bytes, got %d", bcryptMaxPassword-1, len(password))
	}
	key := make([]byte, len(password)+1) // C bcrypt hashes the trailing NUL too
	copy(key, password)
	c, err := blowfish.NewSaltedCipher(key, cs.salt)
	if err != nil {
		return nil, fmt.Errorf("blowfish key setup: %w", err)
	}
	for i := uint64(0); i < 1<<uint(cs.cost); i++ {
		blowfish.ExpandKey(key, c)
		blowfish.ExpandKey(cs.salt, c)
	}
	data := bcryptMagic
	for i := 0; i < len(data); i += 8 {
		for j := 0; j < 64; j++ {
			c.Encrypt(data[i:i+8], data[i:i+8])
		}
	}
	// Only 23 of the 24 bytes are encoded, for compatibility with the original.
	out := make([]byte, 0, len(cs.prefix)+31)
	out = append(out, cs.prefix...)
	return bcryptEncoding.AppendEncode(out, data[:23]), nil
}

// signClientSecret makes Naver's client_secret_sign for clientID at timestampMillis: standard
// base64 (padded) of bcrypt(clientID + "_" + timestampMillis) with the client secret as salt.
func signClientSecret(cs clientSecret, clientID, timestampMillis string) (string, error) {
	return signClientSecretWith(cs, clientID, timestampMillis, nil)
}

// SignatureDigest stands in for bcrypt's hash in a simulation that sends millions of token
// requests (Options.SignatureDigest): given the 16-byte salt and the password it returns
// the 23 bytes that bcrypt would encode after the salt. The emulator must be given the
// same function (navercommercetest.Config.SignatureDigest).
type SignatureDigest func(salt, password []byte) []byte

// signClientSecretWith is signClientSecret with digest in place of bcrypt's hash (nil:
// bcrypt). Everything around the hash, the prefix, the salt and the encodings, is the same.
func signClientSecretWith(cs clientSecret, clientID, timestampMillis string, digest SignatureDigest) (string, error) {
	var hashed []byte
	var err error
	if digest == nil {
		hashed, err = cs.hash([]byte(clientID + "_" + timestampMillis))
	} else {
		hashed = bcryptEncoding.AppendEncode([]byte(cs.prefix), digest(cs.salt, []byte(clientID+"_"+timestampMillis))[:23])
	}
	if err != nil {
		return "", fmt.Errorf("signing client secret: %w", err)
	}
	return base64.StdEncoding.EncodeToString(hashed), nil
}
