package sim

import (
	"context"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// The checks themselves must be able to fail: each is fed a case that breaks its promise.
func TestChecksCatchWhatTheyState(t *testing.T) {
	sign := "JDJhJDA0JFFLTG5vdTFEMmNTSDE5UGlhMzBiY3VPa3ZkR3J0c3RyY2p4b0V3Y2Z0eWx3c2JqYk9xU2E="
	tests := []struct {
		name string
		run  func(w *world)
		want string // invariant expected, "" for none
	}{
		{"signature fragment in a log line", func(w *world) {
			w.scanText("warn: naver said "+sign[20:40]+" ok", "log")
		}, invNoSecret},
		{"unrelated base64 in a log line", func(w *world) {
			w.scanText("trace 7d9da5076b6533a8329c394b290d740e token=abcdefghijklmnopqrstuvwxyz", "log")
		}, ""},
		{"client secret in a warning", func(w *world) {
			w.scanText("renewing failed: "+w.apps[0].secret, "warning")
		}, invNoSecret},
		{"new request 2 s after a failure", func(w *world) {
			a := w.apps[0]
			k := a.key("SELF|")
			k.everFetch, k.lastOK, k.lastAt, k.lastTS = true, false, w.now().Add(-2*time.Second), "1"
			w.checkAttempt(a, k, "SELF|", url.Values{"timestamp": {"2"}}, false, arrivedNow(w))
		}, invBackoff},
		{"a config write's verification 2 s after a failure", func(w *world) {
			a := w.apps[0]
			k := a.key("SELF|")
			k.everFetch, k.lastOK, k.lastAt, k.lastTS = true, false, w.now().Add(-2*time.Second), "1"
			w.checkAttempt(a, k, "SELF|", url.Values{"timestamp": {"2"}}, true, arrivedNow(w))
		}, ""},
		{"a retry of the failed request", func(w *world) {
			a := w.apps[0]
			k := a.key("SELF|")
			k.everFetch, k.lastOK, k.lastAt, k.lastTS = true, false, w.now().Add(-2*time.Second), "1"
			w.checkAttempt(a, k, "SELF|", url.Values{"timestamp": {"1"}}, false, arrivedNow(w))
		}, ""},
		{"thirteenth request within an hour (the default budget is 12)", func(w *world) {
			a := w.apps[0]
			k := a.key("SELF|")
			for i := 0; i < 13; i++ {
				w.checkAttempt(a, k, "SELF|", url.Values{"timestamp": {"1"}}, i%2 == 0, arrivedNow(w))
			}
		}, invKeyBudget},
		{"an hour's first attempt counted before a concurrent action moved the clock", func(w *world) {
			// Seed 1001: the plugin counted the attempt at first; the transport saw it 5 s
			// later. An hour after first the key may send again, and the model must agree.
			thirteenAttempts(w, true)
		}, ""},
		{"the same, judged when the attempt reached the transport", func(w *world) {
			thirteenAttempts(w, false)
		}, invKeyBudget},
		{"an attempt counted after it reached the transport", func(w *world) {
			w.checkAttempt(w.apps[0], w.apps[0].key("SELF|"), "SELF|", signedAt(w.now()), false, stampedAt(w, w.now().Add(time.Second), nil))
		}, invCountedWhenSent},
		{"an attempt counted when it was signed", func(w *world) {
			w.checkAttempt(w.apps[0], w.apps[0].key("SELF|"), "SELF|", signedAt(w.now()), false, stampedAt(w, w.now(), nil))
		}, ""},
		{"an attempt counted before it was signed", func(w *world) {
			w.checkAttempt(w.apps[0], w.apps[0].key("SELF|"), "SELF|", signedAt(w.now()), false, stampedAt(w, w.now().Add(-time.Second), nil))
		}, invCountedWhenSent},
		{"a retry counted after its wait", func(w *world) {
			retried(w, 0)
		}, ""},
		{"a retry counted within a second of the answer it follows", func(w *world) {
			retried(w, -1500*time.Millisecond) // half a second after the answer
		}, invCountedWhenSent},
		{"a retry counted when the attempt it retries was", func(w *world) {
			retried(w, -5*time.Second)
		}, invCountedWhenSent},
		{"a new request in the millisecond of the last answer", func(w *world) {
			// Not a retry: another request of the plugin's, which may follow at once.
			a := w.apps[0]
			k := a.key("SELF|")
			sent := w.now()
			w.checkAttempt(a, k, "SELF|", signedAt(sent), false, stampedAt(w, sent, context.Background()))
			k.answeredAt = w.now()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			w.checkAttempt(a, k, "SELF|", signedAt(sent), false, stampedAt(w, sent, ctx))
		}, ""},
		{"attempts reaching the model out of order leave the hour in order", func(w *world) {
			// Counted at +10 s, then one counted at +0 s; an hour and 5 s on, only the first
			// is left in the hour: with the budget at 2, a third is allowed.
			a := w.apps[0]
			a.perHour = 2
			k := a.key("SELF|")
			start := w.now()
			w.advanceTo(start.Add(10 * time.Second))
			w.checkAttempt(a, k, "SELF|", signedAt(start.Add(10*time.Second)), false, stampedAt(w, start.Add(10*time.Second), nil))
			w.checkAttempt(a, k, "SELF|", signedAt(start), false, stampedAt(w, start, nil))
			w.advanceTo(start.Add(time.Hour + 5*time.Second))
			w.checkAttempt(a, k, "SELF|", signedAt(w.now()), false, stampedAt(w, w.now(), nil))
		}, ""},
		{"client secret deep in status's keys", func(w *world) {
			w.scanResponse(&logical.Response{Data: map[string]any{"keys": []map[string]any{
				{"type": "SELF", "cached": true, "requests_last_hour": 3, "last_error": map[string]any{"message": "naver: " + w.apps[0].secret}},
			}}}, "status")
		}, invNoSecret},
		{"signature fragment in a list of status", func(w *world) {
			w.scanResponse(&logical.Response{Data: map[string]any{"failing": []any{"SELLER|a", sign[10:30]}}}, "status")
		}, invNoSecret},
		{"a status of numbers and names", func(w *world) {
			w.scanResponse(&logical.Response{Data: map[string]any{"keys": []map[string]any{
				{"type": "SELF", "cached": true, "requests_last_hour": 3, "roles": []string{"r1"}},
			}}}, "status")
		}, ""},
		{"status counts a key no role names as cached", func(w *world) {
			w.apps[0].key("SELLER|ncp_app0_nobody").lastRead = w.now() // read since the restart
			w.checkCachedNamed(w.apps[0], []map[string]any{{"type": "SELLER", "account_id": "ncp_app0_nobody", "cached": true}})
		}, invCachedNamed},
		{"a read of a healthy role fails two hours after every fault", func(w *world) {
			a := w.apps[0]
			a.configured, a.cfgSecret, a.baseOK = true, a.secret, true
			w.advanceTo(epoch.Add(2 * time.Hour))
			w.checkFailedRead(a, "r1", roleModel{exists: true, typ: "SELF"}, nil, errors.New("naver answered HTTP 403"), false)
		}, invRecovers},
		{"the same while a config write is under way (seed 622: it wrote a wrong secret, the read used it)", func(w *world) {
			a := w.apps[0]
			a.configured, a.cfgSecret, a.baseOK, a.cfgWriting = true, a.secret, true, 1
			w.advanceTo(epoch.Add(2 * time.Hour))
			w.checkFailedRead(a, "r1", roleModel{exists: true, typ: "SELF"}, nil, errors.New("naver answered HTTP 403"), false)
		}, ""},
		{"a 5-second lease for a token with 3 hours, the role's ttl 0", func(w *world) {
			leaseRead(w, roleModel{exists: true, typ: "SELF"})
		}, invLeaseWithinLife},
		{"the same while a write of the role races the read (seed 396: it set ttl=5s)", func(w *world) {
			leaseRead(w, roleModel{exists: true, typ: "SELF", uncertain: true})
		}, ""},
		{"status counts a key no role names as not cached", func(w *world) {
			w.checkCachedNamed(w.apps[0], []map[string]any{{"type": "SELLER", "account_id": "ncp_app0_nobody", "cached": false}})
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(7, DefaultParams())
			w.fragments = fragmentIndex{}
			w.fragments.add(sign)
			tt.run(w)
			var got []string
			for _, v := range w.violations {
				got = append(got, v.Invariant)
			}
			if tt.want == "" && len(got) > 0 || tt.want != "" && !strings.Contains(strings.Join(got, ","), tt.want) {
				t.Errorf("violations %v, want %q", got, tt.want)
			}
		})
	}
}

func TestLatestTimeReadsAnyExpiryField(t *testing.T) {
	got := latestTime(map[string]any{"expires_at": "2026-11-24T03:00:00Z", "latest_expiry": "2026-11-24T03:00:05Z", "fetched_at": "2026-11-25T00:00:00Z"})
	if want := time.Date(2026, 11, 24, 3, 0, 5, 0, time.UTC); !got.Equal(want) {
		t.Errorf("latestTime = %s, want %s", got, want)
	}
}

func TestClassifyNamesTheDefect(t *testing.T) {
	tests := []struct {
		v    Violation
		want string
	}{
		{Violation{Invariant: invNaverCompliant, Detail: "naver recorded: needless token request: simApp1ClientXXXXXXXX|SELF| asked again while its token had 2h55m7s left (>= 30m0s) (last operator actions: d0+00:18:39 role-create r3 [ → SELF|]; d0+06:59:03 token-drop r4 [SELF|])"}, "16.9"},
		{Violation{Invariant: invNaverCompliant, Detail: "naver recorded: needless token request: simApp0ClientXXXXXXXX|SELLER|ncp_app0_seller1 asked again while its token had 2h left (>= 30m0s) (last operator actions: d0+01:00:00 role-delete r1 [SELLER|ncp_app0_seller1]; d0+01:10:00 role-create r1 [ → SELLER|ncp_app0_seller1])"}, "16.1"},
		{Violation{Invariant: invBackoff, Detail: "app0 key SELF| asked Naver 1s after a failed request (200 OK); reads must share the failure for 5s"}, "16.6"},
	}
	for _, tt := range tests {
		if got := classify(tt.v); !strings.HasPrefix(got, tt.want) {
			t.Errorf("classify(%s) = %q, want %s", tt.v.Detail[:40], got, tt.want)
		}
	}
}

// cached-keys-named reads the keys status lists; status lists them only when asked, so the
// operator view must ask (it did not, and the check never ran).
func TestOperatorViewChecksStatusKeys(t *testing.T) {
	p := DefaultParams()
	p.Days, p.Alphabet = 0.5, 0 // the workload alone: issue 25's findings aside
	r := Run(3, p)
	if r.Stats.cachedNamedKeys == 0 {
		t.Errorf("the operator view checked no key of status's list for cached-keys-named (reads %d, served %d)", r.Stats.Reads, r.Stats.ReadsServed)
	}
	for _, v := range r.Violations {
		t.Errorf("violation: %s", v)
	}
}

// leaseRead checks a read through r served a live token of its key with 3 hours left and a
// 5-second lease.
func leaseRead(w *world, r roleModel) {
	a := w.apps[0]
	now := w.now()
	w.issued["tok"] = &issuedToken{app: a.idx, gen: a.gen, key: r.key(), expires: now.Add(3 * time.Hour), at: now, cred: a.credGen}
	resp := &logical.Response{
		Data:   map[string]any{"access_token": "tok", "expires_in": int64(3 * 3600), "expires_at": now.Add(3 * time.Hour).Format(time.RFC3339)},
		Secret: &logical.Secret{LeaseOptions: logical.LeaseOptions{TTL: 5 * time.Second}},
	}
	w.checkRead(a, "r1", r, false, now, 0, resp, nil, false)
}

// thirteenAttempts sends a key 13 attempts: the first counted by the plugin 5 s before it
// reached the transport (a concurrent action moved the clock), the 13th a second over an
// hour after that count. stamped: the model is told when the plugin counted each.
func thirteenAttempts(w *world, stamped bool) {
	a := w.apps[0]
	k := a.key("SELF|")
	first := w.now()
	attempt := func(counted time.Time) {
		at := attemptAt{arrived: w.now()}
		if stamped {
			at.counted, at.stamped = counted, true
		}
		w.checkAttempt(a, k, "SELF|", signedAt(counted), false, at)
	}
	w.clock.Advance(5 * time.Second)
	attempt(first)
	for i := 1; i < 12; i++ {
		w.advanceTo(first.Add(time.Duration(i) * time.Minute))
		attempt(w.now())
	}
	w.advanceTo(first.Add(time.Hour + time.Second))
	attempt(w.now())
}

// signedAt is the form of a request the plugin signed with its clock at t.
func signedAt(t time.Time) url.Values {
	return url.Values{"timestamp": {strconv.FormatInt(t.Add(-signedBefore).UnixMilli(), 10)}}
}

// stampedAt is an attempt arriving now that the plugin counted at counted, of request req.
func stampedAt(w *world, counted time.Time, req context.Context) attemptAt {
	return attemptAt{arrived: w.now(), counted: counted, stamped: true, req: req}
}

// retried sends a key an attempt that fails, then its retry after a 2-second wait, counted
// early before the retry reached the transport.
func retried(w *world, early time.Duration) {
	a := w.apps[0]
	k := a.key("SELF|")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sent := w.now()
	w.checkAttempt(a, k, "SELF|", signedAt(sent), false, stampedAt(w, sent, ctx))
	w.clock.Advance(3 * time.Second) // latency
	k.answeredAt = w.now()
	w.clock.Advance(2 * time.Second) // the wait before the retry
	w.checkAttempt(a, k, "SELF|", signedAt(sent), false, stampedAt(w, w.now().Add(early), ctx))
}
