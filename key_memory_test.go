package navercommerce

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/internal/core"
	"github.com/navercommerce/vault-plugin-secrets-navercommerce/navercommercetest"
)

// Issue 25: the plugin's RSS with 10,000 sellers' tokens cached. What one cached key costs
// is the live heap the backend keeps for it: measured as the heap with the backend minus
// the heap once the backend is gone (the emulator and the storage stay, as they live in
// other processes in production).
//
//	go test -run '^$' -bench BenchmarkCachedSellersHeap -benchtime 1x .

const memSellers = 10000

// handlerTransport hands requests straight to an http.Handler: no sockets, whose buffers
// and goroutines would blur the measurement.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, req)
	return rec.Result(), nil
}

// memDigest replaces bcrypt on both sides: 10,000 bcrypt signatures are most of the time.
func memDigest(salt, password []byte) []byte {
	sum := sha256.Sum256(append(append([]byte{}, salt...), password...))
	return sum[:23]
}

func liveHeap() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func BenchmarkCachedSellersHeap(b *testing.B) {
	for b.Loop() {
		perKey, perKeySwept := cachedSellersHeap(b)
		b.ReportMetric(perKey, "B/key")
		b.ReportMetric(perKeySwept, "B/key-swept")
	}
}

// cachedSellersHeap reads memSellers sellers' tokens through a many-seller role and returns
// the backend's live heap per key, then the same after a periodic run (which sweeps storage).
func cachedSellersHeap(tb testing.TB) (perKey, perKeySwept float64) {
	ctx := context.Background()
	emu := navercommercetest.New(navercommercetest.Config{
		Applications:    []navercommercetest.Application{{ClientID: testClientID, ClientSecret: testSecret}},
		SignatureDigest: memDigest,
		Penalty:         navercommercetest.PenaltyConfig{RequestsPerHour: -1},
	})
	storage := &logical.InmemStorage{}
	be := newBackend(backendOptions{transport: handlerTransport{emu}, digest: memDigest})
	conf := logical.TestBackendConfig()
	conf.StorageView = storage
	conf.Logger = hclog.NewNullLogger()
	if err := be.Setup(ctx, conf); err != nil {
		tb.Fatal(err)
	}
	do := func(op logical.Operation, path string, data map[string]any) {
		resp, err := be.HandleRequest(ctx, &logical.Request{Operation: op, Path: path, Data: data, Storage: storage, MountPoint: testMount})
		if err != nil || resp.IsError() {
			tb.Fatalf("%s %s: %s", op, path, errorText(resp, err))
		}
	}
	do(logical.CreateOperation, "config", map[string]any{
		"client_id": testClientID, "client_secret": testSecret, "base_url": "http://127.0.0.1:1/external",
		"verify_connection": false, "max_application_requests_per_hour": 3 * memSellers,
	})
	do(logical.CreateOperation, "roles/sellers", map[string]any{"type": "SELLER", "allowed_account_ids": []string{"*"}, "lease": false})

	var failed sync.Once
	read := func(from, to int) {
		var wg sync.WaitGroup
		next := make(chan int)
		for range 16 {
			wg.Go(func() {
				for i := range next {
					resp, err := be.HandleRequest(ctx, &logical.Request{Operation: logical.ReadOperation, Path: fmt.Sprintf("token/sellers/ncp_seller%05d", i), Storage: storage, MountPoint: testMount})
					if err != nil || resp.IsError() {
						failed.Do(func() { tb.Errorf("seller %d: %s", i, errorText(resp, err)) })
					}
				}
			})
		}
		for i := from; i < to; i++ {
			next <- i
		}
		close(next)
		wg.Wait()
		be.WaitIdle()
	}
	// One seller first, so that what every mount holds anyway is in the baseline too.
	read(0, 1)
	before := liveHeap()
	read(1, memSellers+1)
	if tb.Failed() {
		tb.FailNow()
	}
	loaded := liveHeap()
	// Periodic runs until the sweep of storage they start has read every entry (a run reads
	// a part of it).
	for range 20 {
		do(logical.RollbackOperation, "", nil)
		be.WaitIdle()
		sweeping := true
		be.tokens.view(func(m *core.Machine) { sweeping = m.Sweeping() })
		if !sweeping {
			break
		}
	}
	swept := liveHeap()
	if path := os.Getenv("KEYMEM_PROFILE"); path != "" {
		writeHeapProfile(tb, path)
	}

	be.Cleanup(ctx)
	be = nil
	gone := liveHeap()
	// The storage and the emulator grew with the sellers; the backend's share is what went
	// with it (what it holds with no seller, a few KiB, is counted too).
	held := func(with uint64) float64 { return float64(int64(with)-int64(gone)) / memSellers }
	tb.Logf("live heap: %d before the sellers, %d with them, %d after a periodic run, %d without the backend", before, loaded, swept, gone)
	runtime.KeepAlive(storage)
	runtime.KeepAlive(emu)
	return held(loaded), held(swept)
}

// writeHeapProfile writes the live heap to path (set KEYMEM_PROFILE, with
// -memprofilerate 1 for every allocation).
func writeHeapProfile(tb testing.TB, path string) {
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		tb.Fatal(err)
	}
}
