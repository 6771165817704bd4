package navercommerce

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/navercommercetest"
)

// benchEnv is testEnv for benchmarks: real clock, no log capture.
func newBenchEnv(b *testing.B) (*backend, logical.Storage, *navercommercetest.Server) {
	b.Helper()
	naver := navercommercetest.NewServer(navercommercetest.Config{
		Applications: []navercommercetest.Application{{ClientID: testClientID, ClientSecret: testSecret}},
	})
	b.Cleanup(naver.Close)
	storage := &logical.InmemStorage{}
	// In memory there is no lease write to let go first: without the hold, a cold read's
	// iteration does not idle 20 ms (which alone slowed the next read by a third).
	be := newBackend(backendOptions{storeAtOnce: true})
	conf := logical.TestBackendConfig()
	conf.StorageView = storage
	conf.Logger = hclog.NewNullLogger()
	if err := be.Setup(context.Background(), conf); err != nil {
		b.Fatal(err)
	}
	for path, data := range map[string]map[string]any{
		"config":    {"client_id": testClientID, "client_secret": testSecret, "base_url": naver.URL},
		"roles/app": {"type": "SELLER", "account_id": testAccount},
	} {
		resp, err := be.HandleRequest(context.Background(), &logical.Request{Operation: logical.CreateOperation, Path: path, Data: data, Storage: storage})
		if err != nil || resp.IsError() {
			b.Fatal(errorText(resp, err))
		}
	}
	return be, storage, naver
}

func readTokenRequest(s logical.Storage) *logical.Request {
	return &logical.Request{Operation: logical.ReadOperation, Path: "token/app", Storage: s, MountPoint: testMount}
}

// BenchmarkTokenReadWarm is the in-process cost of a warm read (no gRPC, no Vault core).
func BenchmarkTokenReadWarm(b *testing.B) {
	be, s, _ := newBenchEnv(b)
	if _, err := be.HandleRequest(context.Background(), readTokenRequest(s)); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := be.HandleRequest(context.Background(), readTokenRequest(s))
			if err != nil || resp.Secret == nil {
				b.Fatal(errorText(resp, err))
			}
		}
	})
}

// BenchmarkTokenReadCold is a read with nothing cached: signing, one round trip to the
// emulator on loopback, storing the token. Compare with BenchmarkSignClientSecret/cost=04.
func BenchmarkTokenReadCold(b *testing.B) {
	be, s, naver := newBenchEnv(b)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		naver.Reset() // otherwise Naver hands back the same token
		// Nothing cached includes the key's request history and the application's counts:
		// otherwise the hourly budgets refuse later iterations.
		be.forgetEverything(b, s)
		b.StartTimer()
		resp, err := be.HandleRequest(context.Background(), readTokenRequest(s))
		if err != nil || resp.Secret == nil {
			b.Fatal(errorText(resp, err))
		}
	}
}

// simulateDay reads a token every readEvery for 24 simulated hours, with Vault's periodic
// function every minute, and returns how many token requests Naver saw.
func simulateDay(t testing.TB, background bool, readEvery time.Duration) int {
	clock := newFakeClock()
	naver := navercommercetest.NewServer(navercommercetest.Config{
		Applications: []navercommercetest.Application{{ClientID: testClientID, ClientSecret: testSecret}},
		Now:          clock.Now,
	})
	defer naver.Close()
	storage := &logical.InmemStorage{}
	be := newBackend(backendOptions{now: clock.Now, renewAtWindowStart: true})
	conf := logical.TestBackendConfig()
	conf.StorageView = storage
	conf.Logger = hclog.NewNullLogger()
	if err := be.Setup(context.Background(), conf); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for path, data := range map[string]map[string]any{
		"config":    {"client_id": testClientID, "client_secret": testSecret, "base_url": naver.URL, "verify_connection": false, "background_refresh": background},
		"roles/app": {"type": "SELLER", "account_id": testAccount},
	} {
		if resp, err := be.HandleRequest(ctx, &logical.Request{Operation: logical.CreateOperation, Path: path, Data: data, Storage: storage}); err != nil || resp.IsError() {
			t.Fatal(errorText(resp, err))
		}
	}
	end := clock.Now().Add(24 * time.Hour)
	nextPeriodic := clock.Now()
	for clock.Now().Before(end) {
		resp, err := be.HandleRequest(ctx, readTokenRequest(storage))
		if err != nil || resp.IsError() {
			t.Fatal(errorText(resp, err))
		}
		if left := resp.Secret.TTL; left < minAheadLife {
			t.Fatalf("at %s a read got a token with only %s left", clock.Now(), left)
		}
		if !clock.Now().Before(nextPeriodic) {
			if _, err := be.HandleRequest(ctx, &logical.Request{Operation: logical.RollbackOperation, Storage: storage}); err != nil {
				t.Fatal(err)
			}
			nextPeriodic = nextPeriodic.Add(time.Minute)
		}
		// Let a renewal started behind a read land before simulated time moves on.
		waitForDayFlights(be)
		clock.Advance(readEvery)
	}
	if v := naver.Violations(); len(v) > 0 {
		t.Fatalf("non-compliant requests: %v", v)
	}
	return naver.TokenRequestsFor(testClientID, "SELLER", testAccount)
}

// waitForDayFlights returns once no token request is running (background renewals included).
func waitForDayFlights(be *backend) { be.WaitIdle() }

// With 3-hour tokens renewed when Naver allows (under 30 minutes left), each token serves
// 2.5 hours: 24h / 2.5h = 9.6, so 10 requests in a day counting the first. Fewer would mean
// serving tokens that are about to expire; more would waste Naver's request budget.
func TestNaverRequestsPerDay(t *testing.T) {
	for _, background := range []bool{false, true} {
		t.Run(fmt.Sprintf("background_refresh=%v", background), func(t *testing.T) {
			if got := simulateDay(t, background, 5*time.Second); got != 10 {
				t.Errorf("%d token requests in 24h of reads every 5s, want 10", got)
			}
		})
	}
}

func BenchmarkNaverRequestsPerDay(b *testing.B) {
	for _, background := range []bool{false, true} {
		b.Run(fmt.Sprintf("background_refresh=%v", background), func(b *testing.B) {
			var requests int
			for b.Loop() {
				requests = simulateDay(b, background, 5*time.Second)
			}
			b.ReportMetric(float64(requests), "naver-requests/day")
		})
	}
}
