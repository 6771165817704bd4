package navercommercetest_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/navercommercetest"
)

// holdLatency is long enough that a test reliably moves the clock while a
// request is held, short enough to keep the suite quick.
const holdLatency = 1500 * time.Millisecond

// TestLatencyJudgesAtAnswerTime holds a request, moves the shared clock while
// it is held, and checks that the emulator judged it at the new time: the
// 30-minute rule, the timestamp window and expires_in all see the clock as it
// is when the answer is given, not when the request arrived.
func TestLatencyJudgesAtAnswerTime(t *testing.T) {
	cases := []struct {
		name string
		// before is how long after the first token the request is sent;
		// during is how far the clock moves while it is held.
		before, during time.Duration
		status         int
		newToken       bool
		expiresIn      int64
		violation      string
	}{
		{name: "no move: 30m30s left, same token", before: 2*time.Hour + 29*time.Minute + 30*time.Second,
			status: 200, expiresIn: 1830, violation: "needless token request"},
		{name: "sent with 30m30s left, answered with 29m30s: new token", before: 2*time.Hour + 29*time.Minute + 30*time.Second,
			during: time.Minute, status: 200, newToken: true, expiresIn: 10800},
		{name: "sent with 31m left, answered with 30m: same token, 1800s", before: 2*time.Hour + 29*time.Minute,
			during: time.Minute, status: 200, expiresIn: 1800, violation: "needless token request"},
		{name: "timestamp too old by the time it is judged", before: time.Hour, during: 5*time.Minute + time.Second, status: 403},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // each waits out a real latency
			clock := newFakeClock(testStart)
			srv := newTestServer(t, clock, noPenalty)
			first := postToken(t, srv, selfForm(t, clientID, secret, clock.Millis()))
			wantStatus(t, first, http.StatusOK)
			clock.Advance(tc.before)
			srv.SetLatency(holdLatency, 0)

			req := tokenRequest(srv, selfForm(t, clientID, secret, clock.Millis()))
			type answer struct {
				r   response
				err error
			}
			answers := make(chan answer, 1)
			start := time.Now()
			go func() {
				r, err := send(req)
				answers <- answer{r, err}
			}()
			waitFor(t, func() bool { return srv.Stats().Keys[clientID+"|SELF|"].InFlight == 1 })
			clock.Advance(tc.during)
			a := <-answers
			if a.err != nil {
				t.Fatal(a.err)
			}
			r := a.r
			if held := time.Since(start); held < holdLatency {
				t.Fatalf("answered after %v, before the latency of %v", held, holdLatency)
			}

			wantStatus(t, r, tc.status)
			if tc.status == http.StatusOK {
				if (r.token.AccessToken != first.token.AccessToken) != tc.newToken || r.token.ExpiresIn != tc.expiresIn {
					t.Fatalf("new token %v (want %v), expires_in %d (want %d)",
						r.token.AccessToken != first.token.AccessToken, tc.newToken, r.token.ExpiresIn, tc.expiresIn)
				}
			}
			v := srv.Violations()
			if tc.violation == "" && len(v) > 0 || tc.violation != "" && !anyContains(v, tc.violation) {
				t.Fatalf("violations %q, want %q", v, tc.violation)
			}
		})
	}
}

func TestLatencySettings(t *testing.T) {
	clock := newFakeClock(testStart)
	srv := newTestServer(t, clock, func(c *navercommercetest.Config) {
		c.Latency = 30 * time.Millisecond
		c.LatencyJitter = 20 * time.Millisecond
	})
	if fixed, jitter := srv.Latency(); fixed != 30*time.Millisecond || jitter != 20*time.Millisecond {
		t.Fatalf("Latency() = %v, %v", fixed, jitter)
	}
	start := time.Now()
	wantStatus(t, freshSeller(t, srv, clock), http.StatusOK)
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Fatalf("answered after %v, under the fixed latency", d)
	}

	// Jitter alone: a uniform 0..200ms; five answers all under 10ms would
	// mean it is not applied (chance (1/20)^5).
	srv.SetLatency(0, 200*time.Millisecond)
	slow := 0
	for range 5 {
		start := time.Now()
		wantStatus(t, freshSeller(t, srv, clock), http.StatusOK)
		if time.Since(start) >= 10*time.Millisecond {
			slow++
		}
	}
	if slow == 0 {
		t.Fatal("jitter never delayed a request")
	}

	for _, bad := range [][2]time.Duration{{-time.Second, 0}, {0, -time.Second}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("SetLatency(%v, %v) did not panic", bad[0], bad[1])
				}
			}()
			srv.SetLatency(bad[0], bad[1])
		}()
	}
	defer func() {
		if recover() == nil {
			t.Fatal("New with a negative latency did not panic")
		}
	}()
	navercommercetest.New(navercommercetest.Config{Latency: -time.Second})
}

// TestLatencyEndsWhenClientLeaves: a client that gives up during the hold
// frees the handler, gets no token, and the request is not judged.
func TestLatencyEndsWhenClientLeaves(t *testing.T) {
	clock := newFakeClock(testStart)
	srv := newTestServer(t, clock, func(c *navercommercetest.Config) { c.Latency = time.Hour })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/v1/oauth2/token",
		strings.NewReader(selfForm(t, clientID, secret, clock.Millis()).Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if _, err := http.DefaultClient.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want deadline exceeded, got %v", err)
	}
	waitFor(t, func() bool { return srv.Stats().Keys[clientID+"|SELF|"].InFlight == 0 })
	if srv.IssuedTokens() != 0 || srv.TokenRequests() != 1 {
		t.Fatalf("issued %d, requests %d", srv.IssuedTokens(), srv.TokenRequests())
	}
}
