package navercommercetest_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"strings"
	"time"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/navercommercetest"
)

// The application of the examples: Naver's documented example secret.
var exampleApp = navercommercetest.Application{ClientID: "aaaabbbb", ClientSecret: "$2a$04$QKLnou1D2cSH19Pia30bcu"}

func ExampleNewServer() {
	// One clock for the emulator and the code under test: time rules are
	// tested without sleeping.
	clock := navercommercetest.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	srv := navercommercetest.NewServer(navercommercetest.Config{
		Applications: []navercommercetest.Application{exampleApp},
		Now:          clock.Now,
	})
	defer srv.Close()

	res, err := http.DefaultClient.Do(navercommercetest.NewTokenRequest(srv.URL, exampleApp, "SELLER", "ncp_seller", clock.Now()))
	if err != nil {
		log.Fatal(err)
	}
	defer res.Body.Close()
	var token struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
		TokenType   string `json:"token_type"`
	}
	if err := json.NewDecoder(res.Body).Decode(&token); err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.StatusCode, token.TokenType, token.ExpiresIn, srv.TokenValid(token.AccessToken))

	clock.Advance(3 * time.Hour)
	fmt.Println("valid after 3h:", srv.TokenValid(token.AccessToken))
	fmt.Println("requests:", srv.TokenRequestsFor("aaaabbbb", "SELLER", "ncp_seller"), "violations:", len(srv.Violations()))
	// Output:
	// 200 Bearer 10800 true
	// valid after 3h: false
	// requests: 1 violations: 0
}

func ExampleNewTLSServer() {
	srv := navercommercetest.NewTLSServer(navercommercetest.Config{Applications: []navercommercetest.Application{exampleApp}})
	defer srv.Close()

	// Server.Client trusts the server's certificate; Server.Certificate gives
	// it to a cert pool or an SSL_CERT_FILE of another process.
	res, err := srv.Client().Do(navercommercetest.NewTokenRequest(srv.URL, exampleApp, "SELF", "", time.Now()))
	if err != nil {
		log.Fatal(err)
	}
	res.Body.Close()
	fmt.Println(strings.SplitN(srv.URL, ":", 2)[0], res.StatusCode, res.TLS != nil)
	fmt.Println("certificate for", srv.Certificate().IPAddresses[0])
	// Output:
	// https 200 true
	// certificate for 127.0.0.1
}

func ExampleNewTokenRequest() {
	// Naver's documented test vector: the signature is deterministic.
	req := navercommercetest.NewTokenRequest("http://127.0.0.1:9443/external", exampleApp, "SELF", "", time.UnixMilli(1643956077762))
	body, _ := io.ReadAll(req.Body)
	fmt.Println(req.Method, req.URL)
	fmt.Println(req.Header.Get("Content-Type"))
	for _, field := range strings.Split(string(body), "&") {
		fmt.Println(field)
	}
	// Output:
	// POST http://127.0.0.1:9443/external/v1/oauth2/token
	// application/x-www-form-urlencoded
	// client_id=aaaabbbb
	// client_secret_sign=JDJhJDA0JFFLTG5vdTFEMmNTSDE5UGlhMzBiY3Vta2dXSGhENVVOYkhwckNHMi5VU09pQnpXQmxKaWQy
	// grant_type=client_credentials
	// timestamp=1643956077762
	// type=SELF
}

func ExampleSign() {
	sig, err := navercommercetest.Sign("aaaabbbb", "1643956077762", "$2a$04$QKLnou1D2cSH19Pia30bcu")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(sig)
	// Output:
	// JDJhJDA0JFFLTG5vdTFEMmNTSDE5UGlhMzBiY3Vta2dXSGhENVVOYkhwckNHMi5VU09pQnpXQmxKaWQy
}

func ExampleEmulator_InjectFault() {
	srv := navercommercetest.NewServer(navercommercetest.Config{Applications: []navercommercetest.Application{exampleApp}})
	defer srv.Close()

	// The next token request gets a 503 with Retry-After; the one after it
	// is answered normally.
	srv.InjectFault(navercommercetest.Fault{Status: http.StatusServiceUnavailable, RetryAfter: "30"})
	for range 2 {
		res, err := http.DefaultClient.Do(navercommercetest.NewTokenRequest(srv.URL, exampleApp, "SELF", "", time.Now()))
		if err != nil {
			log.Fatal(err)
		}
		var naverError struct{ Code string }
		json.NewDecoder(res.Body).Decode(&naverError)
		res.Body.Close()
		fmt.Println(strings.TrimSpace(fmt.Sprint(res.StatusCode, " ", res.Header.Get("Retry-After"), " ", naverError.Code)))
	}
	// Output:
	// 503 30 GW.BLOCK
	// 200
}

func ExamplePenaltyConfig() {
	clock := navercommercetest.NewClock(time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC))
	srv := navercommercetest.NewServer(navercommercetest.Config{
		Applications: []navercommercetest.Application{exampleApp},
		Now:          clock.Now,
		// The zero PenaltyConfig is Naver's strict penalty; tests that
		// over-ask on purpose set Penalty.Disabled.
	})
	defer srv.Close()
	ask := func(typ, accountID string) {
		res, err := http.DefaultClient.Do(navercommercetest.NewTokenRequest(srv.URL, exampleApp, typ, accountID, clock.Now()))
		if err != nil {
			log.Fatal(err)
		}
		var naverError struct{ Code string }
		json.NewDecoder(res.Body).Decode(&naverError)
		res.Body.Close()
		fmt.Println(strings.TrimSpace(fmt.Sprint(res.StatusCode, " ", naverError.Code)))
	}

	ask("SELF", "")         // a new token
	ask("SELF", "")         // needless: the same token again, and the penalty starts
	ask("SELLER", "ncp_a1") // refused: about one request an hour
	st := srv.Stats()
	fmt.Println("until", st.PenalisedUntil.Format(time.Kitchen)+":", st.PenaltyReason)

	clock.Advance(time.Hour) // the penalty is over
	ask("SELLER", "ncp_a1")
	// Output:
	// 200
	// 200
	// 429 GW.RATE_LIMIT
	// until 4:00AM: needless token request: aaaabbbb|SELF| asked again while its token had 3h0m0s left (>= 30m0s)
	// 200
}
