package navercommerce

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// signatureVectors is testdata/signature_vectors.json, made by
// scripts/signature-vectors/generate.sh with Python's bcrypt and Node's bcryptjs.
type signatureVectors struct {
	Vectors []struct {
		ClientID         string `json:"client_id"`
		Timestamp        string `json:"timestamp"`
		ClientSecret     string `json:"client_secret"`
		Bcrypt           string `json:"bcrypt"`
		ClientSecretSign string `json:"client_secret_sign"`
	} `json:"vectors"`
}

func loadSignatureVectors(t testing.TB) signatureVectors {
	t.Helper()
	raw, err := os.ReadFile("testdata/signature_vectors.json")
	if err != nil {
		t.Fatalf("reading vectors: %v", err)
	}
	var v signatureVectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("decoding vectors: %v", err)
	}
	if len(v.Vectors) < 50 {
		t.Fatalf("want at least 50 vectors, have %d", len(v.Vectors))
	}
	return v
}

func TestSignClientSecretMatchesReferenceLibraries(t *testing.T) {
	costs := map[string]int{}
	for _, vec := range loadSignatureVectors(t).Vectors {
		costs[vec.ClientSecret[4:6]]++
		cs, err := parseClientSecret(vec.ClientSecret)
		if err != nil {
			t.Fatalf("parseClientSecret(vector for %s): %v", vec.ClientID, err)
		}
		hashed, err := cs.hash([]byte(vec.ClientID + "_" + vec.Timestamp))
		if err != nil {
			t.Fatal(err)
		}
		if string(hashed) != vec.Bcrypt {
			t.Errorf("bcrypt(%s_%s, %s) = %s, reference libraries say %s", vec.ClientID, vec.Timestamp, vec.ClientSecret, hashed, vec.Bcrypt)
		}
		sign, err := signClientSecret(cs, vec.ClientID, vec.Timestamp)
		if err != nil {
			t.Fatal(err)
		}
		if sign != vec.ClientSecretSign {
			t.Errorf("signClientSecret(%s, %s) = %s, want %s", vec.ClientID, vec.Timestamp, sign, vec.ClientSecretSign)
		}
		// An independent check: x/crypto's verifier accepts what we made.
		if err := bcrypt.CompareHashAndPassword(hashed, []byte(vec.ClientID+"_"+vec.Timestamp)); err != nil {
			t.Errorf("x/crypto/bcrypt rejects our hash for %s: %v", vec.ClientID, err)
		}
	}
	if costs["04"] == 0 || costs["10"] == 0 {
		t.Errorf("vectors should cover costs 04 and 10, have %v", costs)
	}
}

func TestParseClientSecret(t *testing.T) {
	tests := []struct {
		name, in string
		wantErr  string
	}{
		{"naver cost 4", "$2a$04$QKLnou1D2cSH19Pia30bcu", ""},
		{"surrounding white space", "  $2a$04$QKLnou1D2cSH19Pia30bcu\n", ""},
		{"2b", "$2b$10$QKLnou1D2cSH19Pia30bcu", ""},
		{"2y", "$2y$04$QKLnou1D2cSH19Pia30bcu", ""},
		{"non-canonical last char", "$2a$04$QKLnou1D2cSH19Pia30bcz", ""},
		{"empty", "", "must be a bcrypt salt"},
		{"2x", "$2x$04$QKLnou1D2cSH19Pia30bcu", "must be a bcrypt salt"},
		{"no minor", "$2$04$QKLnou1D2cSH19Pia30bcuX", "must be a bcrypt salt"},
		{"one-digit cost", "$2a$4$QKLnou1D2cSH19Pia30bcuX", "must be a bcrypt salt"},
		{"cost too low", "$2a$03$QKLnou1D2cSH19Pia30bcu", "cost from 04 to 16"},
		{"cost too high", "$2a$31$QKLnou1D2cSH19Pia30bcu", "cost from 04 to 16"},
		{"short", "$2a$04$QKLnou1D2cSH19Pia30bc", "must be a bcrypt salt"},
		{"long", "$2a$04$QKLnou1D2cSH19Pia30bcuu", "must be a bcrypt salt"},
		{"bad alphabet", "$2a$04$QKLnou1D2cSH19Pia30b+u", "must be a bcrypt salt"},
		{"whole bcrypt hash", "$2a$04$QKLnou1D2cSH19Pia30bcumkgWHhD5UNbHprCG2.USOiBzWBlJid2", "must be a bcrypt salt"},
		{"inner space", "$2a$04$QKLnou1D2cSH 9Pia30bcu", "must be a bcrypt salt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseClientSecret(tt.in)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
			}
			if tt.in != "" && strings.Contains(err.Error(), strings.TrimSpace(tt.in)) {
				t.Fatalf("error quotes the secret: %v", err)
			}
		})
	}
}

func TestHashRejectsPasswordsBcryptWouldTruncate(t *testing.T) {
	cs, err := parseClientSecret("$2a$04$QKLnou1D2cSH19Pia30bcu")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.hash([]byte(strings.Repeat("x", 71))); err != nil {
		t.Fatalf("71 bytes should hash: %v", err)
	}
	if _, err := cs.hash([]byte(strings.Repeat("x", 72))); err == nil {
		t.Fatal("72 bytes would lose bcrypt's trailing NUL; want an error")
	}
}

func BenchmarkSignClientSecret(b *testing.B) {
	for _, cost := range []string{"04", "10"} {
		cs, err := parseClientSecret("$2a$" + cost + "$QKLnou1D2cSH19Pia30bcu")
		if err != nil {
			b.Fatal(err)
		}
		b.Run("cost="+cost+"/signClientSecret", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := signClientSecret(cs, "7dMvteboKNHwyRremLXXXX", "1643956077762"); err != nil {
					b.Fatal(err)
				}
			}
		})
		c := cs.cost
		b.Run("cost="+cost+"/x-crypto-bcrypt", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bcrypt.GenerateFromPassword([]byte("7dMvteboKNHwyRremLXXXX_1643956077762"), c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestClientSignatureMemo(t *testing.T) {
	cs, err := parseClientSecret("$2a$04$N1Gx7cSLNGTm1gV9kLfDKe")
	if err != nil {
		t.Fatal(err)
	}
	c, err := newNaverClient(naverClientConfig{baseURL: "http://127.0.0.1:9", clientID: "7dMvteboKNHwyRremLXXXX", secret: cs})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		timestamp string
		wantMade  int // bcrypt hashes computed so far
	}{
		{"1643956077762", 1},
		{"1643956077762", 1}, // the same millisecond: the last signature, not a new hash
		{"1643956077763", 2},
		{"1643956077762", 3}, // only the last one is kept
	}
	for _, s := range steps {
		got, err := c.sign(s.timestamp)
		if err != nil {
			t.Fatal(err)
		}
		want, err := signClientSecret(cs, c.clientID, s.timestamp)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("sign(%s) = %s, want %s", s.timestamp, got, want)
		}
		if c.signaturesMade != s.wantMade {
			t.Fatalf("after sign(%s): %d hashes computed, want %d", s.timestamp, c.signaturesMade, s.wantMade)
		}
	}
}
