package navercommercetest

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	//lint:ignore SA1019 bcrypt is built from Blowfish, and Naver's signature is bcrypt with a given salt.
	"golang.org/x/crypto/blowfish"
)

// maxPassword is where bcrypt stops reading the password; x/crypto/bcrypt,
// which verifies signatures here, refuses longer ones outright.
const maxPassword = 72

// bcryptMagic is bcrypt's plaintext, encrypted 64 times under the expensive
// key schedule.
const bcryptMagic = "OrpheanBeholderScryDoubt"

// Sign returns the client_secret_sign of a token request: standard base64 of
// bcrypt(clientID + "_" + timestamp) with clientSecret as the bcrypt salt, as
// Naver's Python (bcrypt) and Node.js (bcryptjs) examples compute it. It is
// the emulator's own signer, independent of the plugin's: it is built on
// x/crypto/blowfish, while the emulator verifies signatures with
// x/crypto/bcrypt, and it is proved against vectors made by those two
// libraries. It fails on a malformed secret or a password longer than 72
// bytes, which bcrypt would cut short. A secret's cost is not capped: cost 31
// takes hours.
func Sign(clientID, timestamp, clientSecret string) (string, error) {
	sec, err := parseClientSecret(clientSecret)
	if err != nil {
		return "", err
	}
	password := clientID + "_" + timestamp
	if len(password) > maxPassword {
		return "", fmt.Errorf(`client_id + "_" + timestamp is %d bytes; bcrypt reads at most %d`, len(password), maxPassword)
	}
	cost, _ := strconv.Atoi(sec.prefix[4:6]) // checked by parseClientSecret
	// C bcrypt, which the reference libraries follow, hashes the key with
	// its terminating NUL.
	key := append([]byte(password), 0)
	c, err := blowfish.NewSaltedCipher(key, sec.salt[:])
	if err != nil {
		return "", fmt.Errorf("bcrypt key schedule: %w", err)
	}
	for i := uint64(0); i < 1<<uint(cost); i++ {
		blowfish.ExpandKey(key, c)
		blowfish.ExpandKey(sec.salt[:], c)
	}
	data := []byte(bcryptMagic)
	for i := 0; i < len(data); i += 8 {
		for range 64 {
			c.Encrypt(data[i:i+8], data[i:i+8])
		}
	}
	// Only 23 of the 24 bytes are encoded, as C bcrypt does; the salt is
	// re-encoded from its bytes, so it comes out in canonical spelling.
	hash := sec.prefix + sec.canonical + bcryptB64.EncodeToString(data[:23])
	return base64.StdEncoding.EncodeToString([]byte(hash)), nil
}

// TokenForm returns the form of a correctly signed token request for app, as
// a compliant client sends it: timestamp = now in milliseconds, and
// account_id only when accountID is not empty (send it with typ "SELLER";
// with "SELF" it is a violation, which is how a test provokes one).
func TokenForm(app Application, typ, accountID string, now time.Time) (url.Values, error) {
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	sig, err := Sign(app.ClientID, ts, app.ClientSecret)
	if err != nil {
		return nil, fmt.Errorf("signing a token request for %q: %w", app.ClientID, err)
	}
	form := url.Values{
		"client_id":          {app.ClientID},
		"timestamp":          {ts},
		"grant_type":         {"client_credentials"},
		"client_secret_sign": {sig},
		"type":               {typ},
	}
	if accountID != "" {
		form.Set("account_id", accountID)
	}
	return form, nil
}

// NewTokenRequest returns a signed token request (POST
// baseURL/v1/oauth2/token, form-encoded, see TokenForm) for app at now, like
// httptest.NewRequest: it can be sent with an http.Client (Server.Client for
// a TLS server) or passed to an Emulator's ServeHTTP. baseURL is the API base
// URL, Server.URL. It panics on a bad URL or a secret it cannot sign with,
// which are bugs in the test.
func NewTokenRequest(baseURL string, app Application, typ, accountID string, now time.Time) *http.Request {
	form, err := TokenForm(app, typ, accountID, now)
	if err != nil {
		panic("navercommercetest: " + err.Error())
	}
	req, err := http.NewRequest(http.MethodPost, strings.TrimRight(baseURL, "/")+"/v1/oauth2/token", strings.NewReader(form.Encode()))
	if err != nil {
		panic("navercommercetest: building a token request: " + err.Error())
	}
	req.Header.Set("Content-Type", formMediaType)
	req.Header.Set("Accept", "application/json")
	return req
}
