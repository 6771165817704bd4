package navercommercetest_test

import (
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/navercommercetest"
)

// vectorsPath holds signatures made by Python's bcrypt and Node's bcryptjs
// (scripts/signature-vectors), relative to this package's directory.
const vectorsPath = "../testdata/signature_vectors.json"

type vector struct {
	ClientID         string `json:"client_id"`
	Timestamp        string `json:"timestamp"`
	ClientSecret     string `json:"client_secret"`
	Bcrypt           string `json:"bcrypt"`
	ClientSecretSign string `json:"client_secret_sign"`
}

func loadVectors(t *testing.T) []vector {
	t.Helper()
	b, err := os.ReadFile(vectorsPath)
	if errors.Is(err, fs.ErrNotExist) {
		t.Skipf("%s does not exist yet; generate it with scripts/signature-vectors/generate.sh", vectorsPath)
	}
	if err != nil {
		t.Fatalf("reading vectors: %v", err)
	}
	var doc struct {
		Vectors []vector `json:"vectors"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("decoding %s: %v", vectorsPath, err)
	}
	if len(doc.Vectors) == 0 {
		t.Fatalf("%s has no vectors", vectorsPath)
	}
	if v := doc.Vectors[0]; v.ClientID != knownClientID || v.ClientSecretSign != knownSign {
		t.Fatalf("first vector is not the known vector: %+v", v)
	}
	return doc.Vectors
}

// TestSignatureVectors proves the emulator's verifier agrees with the
// reference libraries: it accepts their signatures and rejects them after
// any one-character change or with another timestamp.
func TestSignatureVectors(t *testing.T) {
	for i, v := range loadVectors(t) {
		t.Run(strconv.Itoa(i)+"_"+v.ClientSecret[:7], func(t *testing.T) {
			if testing.Short() && v.ClientSecret[4:6] != "04" {
				t.Skip("cost above 04 is slow under -race; run without -short")
			}
			ms, err := strconv.ParseInt(v.Timestamp, 10, 64)
			if err != nil {
				t.Fatalf("vector timestamp: %v", err)
			}
			clock := newFakeClock(time.UnixMilli(ms))
			e := navercommercetest.New(navercommercetest.Config{
				Applications: []navercommercetest.Application{{ClientID: v.ClientID, ClientSecret: v.ClientSecret}},
				Now:          clock.Now,
			})
			post := func(ts, sig string) (int, string) {
				form := url.Values{
					"client_id": {v.ClientID}, "timestamp": {ts}, "grant_type": {"client_credentials"},
					"client_secret_sign": {sig}, "type": {"SELF"},
				}
				req := httptest.NewRequest(http.MethodPost, "/external/v1/oauth2/token", strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				rec := httptest.NewRecorder()
				e.ServeHTTP(rec, req)
				return rec.Code, rec.Body.String()
			}

			if code, body := post(v.Timestamp, v.ClientSecretSign); code != http.StatusOK {
				t.Fatalf("reference signature rejected: %d %s", code, body)
			}

			// One character changed: once in a position chosen per vector
			// (covering prefix, salt and hash over the set) and once in the
			// last character, which carries the end of the hash.
			for _, pos := range []int{(i * 7) % len(v.ClientSecretSign), len(v.ClientSecretSign) - 1} {
				sig := []byte(v.ClientSecretSign)
				sig[pos] = flip(sig[pos])
				if code, body := post(v.Timestamp, string(sig)); code != http.StatusForbidden || !strings.Contains(body, "client_secret_sign is invalid") {
					t.Errorf("signature changed at %d: got %d %s, want 403 invalid signature", pos, code, body)
				}
			}

			// Another timestamp inside the window: only the signature can fail.
			if code, body := post(strconv.FormatInt(ms-1, 10), v.ClientSecretSign); code != http.StatusForbidden || !strings.Contains(body, "client_secret_sign is invalid") {
				t.Errorf("other timestamp: got %d %s, want 403 invalid signature", code, body)
			}
			if e.IssuedTokens() != 1 {
				t.Errorf("IssuedTokens = %d, want 1", e.IssuedTokens())
			}
		})
	}
}

// TestSignMatchesVectors keeps the exported signer honest: it must produce
// the reference libraries' output byte for byte, and the emulator must accept
// a request built with it (TestSignatureVectors proves the verifier on the
// same vectors).
func TestSignMatchesVectors(t *testing.T) {
	for i, v := range loadVectors(t) {
		if testing.Short() && v.ClientSecret[4:6] != "04" {
			continue // cost above 04 is slow under -race; run without -short
		}
		got := sign(t, v.ClientID, v.Timestamp, v.ClientSecret)
		if got != v.ClientSecretSign {
			t.Errorf("vector %d: Sign = %s, want %s", i, got, v.ClientSecretSign)
		}
		if b := bcryptOf(t, got); b != v.Bcrypt {
			t.Errorf("vector %d: bcrypt = %s, want %s", i, b, v.Bcrypt)
		}
	}
}
