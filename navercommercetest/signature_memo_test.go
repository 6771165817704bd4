package navercommercetest_test

import (
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/navercommercetest"
)

// digestSign signs as a simulation's plugin does with Config.SignatureDigest: bcrypt's
// string with digest's 23 bytes in place of the hash.
func digestSign(t testing.TB, clientID, ts, secret string, digest func(salt, password []byte) []byte) string {
	t.Helper()
	real := bcryptOf(t, sign(t, clientID, ts, secret)) // prefix and canonical salt
	enc := base64.NewEncoding("./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789").WithPadding(base64.NoPadding)
	salt, err := enc.DecodeString(real[7:29])
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString([]byte(real[:29] + enc.EncodeToString(digest(salt[:16], []byte(clientID+"_"+ts))[:23])))
}

func TestSignatureDigestAndMemo(t *testing.T) {
	var calls atomic.Int64
	digest := func(salt, password []byte) []byte {
		calls.Add(1)
		sum := sha256.Sum256(append(append([]byte{}, salt...), password...))
		return sum[:]
	}
	clock := newFakeClock(testStart)
	srv := newTestServer(t, clock, noPenalty, func(c *navercommercetest.Config) { c.SignatureDigest = digest })
	ts := clock.Millis()
	good := digestSign(t, clientID, ts, secret, digest)
	form := func(sig, account string) url.Values {
		f := sellerForm(t, clientID, secret, ts, account)
		f.Set("client_secret_sign", sig)
		return f
	}
	steps := []struct {
		name      string
		form      url.Values
		status    int
		wantCalls int64 // digests computed so far (the test's two digest signatures count too)
	}{
		{"a digest signature is accepted", form(good, "ncp_a"), 200, 3},
		{"the same signature again is not hashed again", form(good, "ncp_b"), 200, 3},
		{"bcrypt's own signature is refused when a digest is set", form(sign(t, clientID, ts, secret), "ncp_c"), 403, 4},
		{"another secret's signature is refused", form(digestSign(t, clientID, ts, otherSecret, digest), "ncp_d"), 403, 4},
		{"the memo still serves the last good signature", form(good, "ncp_e"), 200, 4},
	}
	for _, s := range steps {
		r := postToken(t, srv, s.form)
		if r.status != s.status {
			t.Fatalf("%s: status %d, want %d; body %s", s.name, r.status, s.status, r.body)
		}
		if got := calls.Load(); got != s.wantCalls {
			t.Fatalf("%s: %d digests computed, want %d", s.name, got, s.wantCalls)
		}
	}
	// A rotated secret: the memoised signature is the old secret's and must not pass.
	srv.SetClientSecret(clientID, otherSecret)
	if r := postToken(t, srv, form(good, "ncp_f")); r.status != 403 {
		t.Fatalf("after a rotation the old secret's signature got %d, want 403; body %s", r.status, r.body)
	}
}
