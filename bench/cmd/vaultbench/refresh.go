package main

import (
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// The dev phase's refresh test: reads across a renewal while Naver is slow.

// refreshResult is one run of the refresh test.
type refreshResult struct {
	background   bool
	reads        int
	p50, max     time.Duration
	slow         int           // reads slower than 100 ms
	renewedAfter time.Duration // from the window's start to the first read that got the new token
	renewed      bool
	requests     int // token requests the emulator saw for the key
}

// refresh reads a token every 50 ms across the start of its renewal window while Naver
// answers the renewal naverDelay late: with background refresh on, no read should wait.
func (e *env) refresh(bg bool) (refreshResult, error) {
	res := refreshResult{background: bg}
	role := fmt.Sprintf("refresh-%v", bg)
	account := "refresh-account-" + strconv.FormatBool(bg)
	logf("refresh test, background_refresh=%v (Naver %s late; about 15s)", bg, e.o.naverDelay)
	// renewal_spread 0: the renewal is due as the window opens, the moment measured here
	// (with the default spread it may lie up to 20 minutes later, past the test).
	if _, err := e.c.Logical().WriteWithContext(e.ctx, "navercommerce/config", map[string]any{"background_refresh": bg, "renewal_spread": 0}); err != nil {
		return res, err
	}
	if _, err := e.c.Logical().WriteWithContext(e.ctx, "navercommerce/roles/"+role, map[string]any{"type": "SELLER", "account_id": account}); err != nil {
		return res, err
	}
	// A token that enters Naver's 30-minute window 12 seconds after it is issued (the plugin
	// asks a key at most every 10 seconds).
	if err := e.em.AdminJSON(http.MethodPost, "token-lifetime", map[string]string{"token_lifetime": "30m12s"}, nil); err != nil {
		return res, err
	}
	s, err := e.c.Logical().ReadWithContext(e.ctx, "navercommerce/token/"+role)
	if err == nil {
		err = leased(s)
	}
	fetched := time.Now()
	if err2 := e.em.AdminJSON(http.MethodPost, "token-lifetime", map[string]string{"token_lifetime": "3h"}, nil); err == nil {
		err = err2
	}
	if err != nil {
		return res, err
	}
	first, _ := s.Data["access_token"].(string)
	expiresAt, err := time.Parse(time.RFC3339, fmt.Sprint(s.Data["expires_at"]))
	if err != nil {
		return res, err
	}
	window := expiresAt.Add(-30 * time.Minute)
	if w := fetched.Add(10 * time.Second); window.Before(w) {
		window = w
	}
	if err := e.em.AdminJSON(http.MethodPost, "faults", map[string]any{"count": 1, "delay": e.o.naverDelay.String()}, nil); err != nil {
		return res, err
	}
	time.Sleep(time.Until(window.Add(-time.Second)))
	var lat []time.Duration
	deadline := window.Add(e.o.naverDelay + 15*time.Second)
	var renewedAt time.Time
	for time.Now().Before(deadline) {
		t0 := time.Now()
		s, err := e.c.Logical().ReadWithContext(e.ctx, "navercommerce/token/"+role)
		d := time.Since(t0)
		if err == nil {
			err = leased(s)
		}
		if err != nil {
			return res, err
		}
		lat = append(lat, d)
		if d > 100*time.Millisecond {
			res.slow++
		}
		if tok, _ := s.Data["access_token"].(string); tok != first && renewedAt.IsZero() {
			renewedAt = time.Now()
		}
		// Read on for a second after the renewal, then stop.
		if !renewedAt.IsZero() && time.Since(renewedAt) > time.Second {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	st := summarise(lat, 0, 0)
	res.reads, res.p50, res.max = st.N, st.P50, st.Max
	res.renewed = !renewedAt.IsZero()
	if res.renewed {
		res.renewedAfter = renewedAt.Sub(window)
	}
	stats, err := e.em.Stats()
	if err != nil {
		return res, err
	}
	res.requests = stats.Keys[e.em.Key("SELLER", account)].Requests
	logf("  %d reads, p50 %s, max %s, %d slower than 100ms; renewed %v (%s after the window opened); %d token requests",
		res.reads, ms(res.p50), ms(res.max), res.slow, res.renewed, res.renewedAfter.Round(time.Millisecond), res.requests)
	return res, nil
}
