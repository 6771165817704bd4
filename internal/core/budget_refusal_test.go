package core

import (
	"testing"
	"time"
)

// stepAll is h.step, returning every effect it led to (the harness drops Metric and Log).
func stepAll(h *harness, ev Event) []Effect {
	var all []Effect
	h.m.Step(ev)
	h.queue = append(h.queue, h.m.Ready()...)
	for len(h.queue) > 0 {
		e := h.queue[0]
		h.queue = h.queue[1:]
		all = append(all, e)
		h.effect(e)
	}
	return all
}

// A background renewal the application's budget refuses is counted once in each metric and
// shown in status, every time; while the budget stays spent, it is logged only once.
func TestARenewalRefusedByTheApplicationBudgetIsCountedOnceAndLoggedOnce(t *testing.T) {
	h := newHarness(t)
	h.cfg.AppPerHour = 4 // background renewals: at most 3 of the hour
	cfg := h.cfg
	h.step(ConfigSet{Now: h.now, Config: &cfg})
	if _, err := h.read("ncp_a"); err != nil {
		t.Fatal(err)
	}
	h.now = h.now.Add(2*time.Hour + 31*time.Minute) // ncp_a in its renewal window
	for _, acc := range []string{"ncp_b", "ncp_c", "ncp_d"} {
		if _, err := h.read(acc); err != nil {
			t.Fatal(err)
		}
	}
	for run := 0; run < 3; run++ {
		sent := len(h.sent)
		effs := stepAll(h, Tick{Now: h.now})
		effs = append(effs, stepAll(h, TickEnd{Now: h.now})...)
		if len(h.sent) != sent {
			t.Fatalf("run %d: a background renewal reached Naver over the budget", run)
		}
		refused, failed, warned := 0, 0, 0
		for _, e := range effs {
			switch e := e.(type) {
			case Metric:
				if e.Name == MetricAppBudgetRefused {
					refused++
				}
				if e.Name == MetricRenewal && e.Err != nil {
					failed++
				}
			case Log:
				if e.Warn {
					warned++
				}
			}
		}
		if refused != 1 || failed != 1 {
			t.Errorf("run %d: application budget refusals %d, failed background renewals %d; want 1 and 1", run, refused, failed)
		}
		if want := map[bool]int{true: 2, false: 0}[run == 0]; warned != want {
			t.Errorf("run %d: %d warnings, want %d (said once while the budget stays spent)", run, warned, want)
		}
		if v, _ := h.m.View(h.now, Key{ClientID: "app", Type: TypeSeller, AccountID: "ncp_a"}); v.LastError == nil {
			t.Errorf("run %d: status shows no last error for a token whose renewal is refused", run)
		}
		h.now = h.now.Add(time.Minute)
	}
}

// A periodic run while the clock is behind leaves the hour's counts as they are: once the
// clock is right again, the application still sends no more than its budget in an hour.
func TestAnIdleRunDuringAClockStepBackKeepsTheApplicationBudget(t *testing.T) {
	h := newHarness(t)
	h.cfg.AppPerHour = 4
	cfg := h.cfg
	h.step(ConfigSet{Now: h.now, Config: &cfg})
	for _, acc := range []string{"ncp_a", "ncp_b", "ncp_c", "ncp_d"} {
		if _, err := h.read(acc); err != nil {
			t.Fatal(err)
		}
	}
	start := h.now
	h.now = start.Add(-50 * time.Minute)
	h.tick()
	h.now = start.Add(11 * time.Minute)
	sent := len(h.sent)
	if _, err := h.read("ncp_e"); len(h.sent) != sent {
		t.Fatalf("a 5th request reached Naver 11 minutes after 4, over max_application_requests_per_hour=4 (err %v)", err)
	}
}

// A key's attempt counts from when it leaves, not from when the core decided it: the
// write of the application's counts it waited for took 10 s, so an hour after the
// decision the attempt is still in the key's hour, and it leaves that hour 10 s later.
func TestAKeysAttemptCountsFromWhenItLeaves(t *testing.T) {
	h := newHarness(t)
	h.holdCounts = true
	decided := h.now
	id := h.readAsync("ncp_1")
	h.drain()
	h.now = h.now.Add(10 * time.Second)
	h.holdCounts = false
	h.release()
	h.drain()
	if _, ok := h.served[id]; !ok {
		t.Fatalf("the read was not served: %v", h.failed[id])
	}
	log := &h.m.key(Key{ClientID: "app", Type: TypeSeller, AccountID: "ncp_1"}).log
	if n, _ := log.since(decided.Add(time.Hour+5*time.Second), time.Hour); n != 1 {
		t.Errorf("an hour and 5 s after the decision, %d attempts in the key's hour; want 1 (it left at +10 s)", n)
	}
	if n, _ := log.since(decided.Add(time.Hour+10*time.Second), time.Hour); n != 0 {
		t.Errorf("an hour after it left, %d attempts in the key's hour; want 0", n)
	}
}
