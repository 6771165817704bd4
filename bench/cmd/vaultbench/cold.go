package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/navercommercetest"
)

// The dev phase's cold reads: a new key each, beside the raw upstream round trip.

// cold alternates a cold read (a role over an account never read before: the plugin signs
// and asks the emulator once) with a raw signed request to the emulator for another new
// account, timed from here: the upstream round trip the cold read contains.
func (e *env) cold(r *report) error {
	n := e.o.coldN
	logf("cold reads: %d, each beside a raw upstream request", n)
	if err := parallel(n, 8, func(i int) error {
		_, err := e.c.Logical().WriteWithContext(e.ctx, fmt.Sprintf("navercommerce/roles/cold-%04d", i),
			map[string]any{"type": "SELLER", "account_id": fmt.Sprintf("cold-account-%04d", i)})
		return err
	}); err != nil {
		return err
	}
	// One request first, so the raw requests reuse a kept-alive connection as the plugin does.
	if _, err := e.rawToken("rtt-warmup"); err != nil {
		return err
	}
	if err := e.em.Admin(http.MethodPost, "reset", "", nil, nil); err != nil {
		return err
	}
	var coldLat, rttLat, signLat []time.Duration
	start := time.Now()
	for i := range n {
		t0 := time.Now()
		s, err := e.c.Logical().ReadWithContext(e.ctx, fmt.Sprintf("navercommerce/token/cold-%04d", i))
		d := time.Since(t0)
		if err == nil {
			err = leased(s)
		}
		if err != nil {
			return err
		}
		coldLat = append(coldLat, d)
		rt, err := e.rawToken(fmt.Sprintf("rtt-account-%04d", i))
		if err != nil {
			return err
		}
		signLat = append(signLat, rt.sign)
		rttLat = append(rttLat, rt.rtt)
	}
	elapsed := time.Since(start)
	r.cold = summarise(coldLat, 0, 0)
	r.rtt = summarise(rttLat, 0, 0)
	r.benchSign = summarise(signLat, 0, 0)
	st, err := e.em.Stats()
	if err != nil {
		return err
	}
	r.coldUpstream = st.TokenRequests
	logf("  cold p50 %s p99 %s; raw upstream p50 %s; %d requests at the emulator for %d cold reads + %d raw (%s)",
		ms(r.cold.P50), ms(r.cold.P99), ms(r.rtt.P50), st.TokenRequests, n, n, elapsed.Round(time.Millisecond))
	return nil
}

type rawResult struct{ sign, rtt time.Duration }

// rawToken signs a token request for a SELLER account with the emulator's signer
// (navercommercetest.Sign, independent of the plugin's), then times the POST to the emulator
// alone.
func (e *env) rawToken(account string) (rawResult, error) {
	var out rawResult
	ts := strconv.FormatInt(time.Now().Add(-time.Second).UnixMilli(), 10)
	t0 := time.Now()
	sig, err := navercommercetest.Sign(e.em.ClientID, ts, e.em.ClientSecret)
	out.sign = time.Since(t0)
	if err != nil {
		return out, err
	}
	form := url.Values{
		"client_id": {e.em.ClientID}, "timestamp": {ts}, "grant_type": {"client_credentials"},
		"client_secret_sign": {sig}, "type": {"SELLER"}, "account_id": {account},
	}.Encode()
	req, err := http.NewRequest(http.MethodPost, e.em.URL+"/v1/oauth2/token", strings.NewReader(form))
	if err != nil {
		return out, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	t0 = time.Now()
	resp, err := e.em.HTTP.Do(req)
	if err != nil {
		return out, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	out.rtt = time.Since(t0)
	if err != nil {
		return out, err
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != http.StatusOK || jsonUnmarshal(body, &tok) != nil || tok.AccessToken == "" {
		return out, fmt.Errorf("raw token request: HTTP %d: %.200s", resp.StatusCode, body)
	}
	return out, nil
}
