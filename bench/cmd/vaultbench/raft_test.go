package main

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

func TestPromValues(t *testing.T) {
	const exposition = `# HELP vault_raft_apply vault_raft_apply
# TYPE vault_raft_apply counter
vault_raft_apply 44
vault_raft_boltdb_logSize{quantile="0.5"} 209
vault_raft_boltdb_logSize_sum 20161
vault_raft_boltdb_logSize_count 39
vault_raft_apply_extra 7
`
	tests := []struct {
		name    string
		names   []string
		want    map[string]float64
		wantErr string
	}{
		{name: "counters and summary sums", names: []string{"vault_raft_apply", "vault_raft_boltdb_logSize_sum"},
			want: map[string]float64{"vault_raft_apply": 44, "vault_raft_boltdb_logSize_sum": 20161}},
		{name: "a missing metric is an error, not a zero", names: []string{"vault_raft_apply", "vault_raft_nonesuch"},
			wantErr: "no vault_raft_nonesuch in Vault's metrics"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := promValues(strings.NewReader(exposition), tt.names...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("want an error with %q, got %v (%v)", tt.wantErr, err, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %v, want %v", k, got[k], v)
				}
			}
		})
	}
}

func TestTargetChecks(t *testing.T) {
	data := map[string]any{"access_token": "tok", "expires_in": 100}
	tests := []struct {
		name          string
		secret        *api.Secret
		leased, freed bool // whether leased and leaseFree accept it
	}{
		{name: "non-renewable lease", secret: &api.Secret{LeaseID: "x/1", LeaseDuration: 100, Data: data}, leased: true},
		{name: "renewable lease", secret: &api.Secret{LeaseID: "x/1", LeaseDuration: 100, Renewable: true, Data: data}},
		{name: "no lease", secret: &api.Secret{Data: data}, freed: true},
		{name: "no lease id but a duration", secret: &api.Secret{LeaseDuration: 100, Data: data}},
		{name: "no token", secret: &api.Secret{Data: map[string]any{"expires_in": 100}}},
		{name: "no answer", secret: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := leased(tt.secret); (err == nil) != tt.leased {
				t.Errorf("leased: %v, want accepted %v", err, tt.leased)
			}
			if err := leaseFree(tt.secret); (err == nil) != tt.freed {
				t.Errorf("leaseFree: %v, want accepted %v", err, tt.freed)
			}
		})
	}
}

func TestParseConcurrency(t *testing.T) {
	tests := []struct {
		in   string
		want []int
	}{
		{"1,8,64", []int{1, 8, 64}},
		{" 1 , 8", []int{1, 8}},
		{"0", nil},
		{"257", nil},
		{"1,x", nil},
	}
	for _, tt := range tests {
		got, err := parseConcurrency(tt.in)
		if tt.want == nil {
			if err == nil {
				t.Errorf("%q: want an error, got %v", tt.in, got)
			}
			continue
		}
		if err != nil || len(got) != len(tt.want) {
			t.Errorf("%q: got %v, %v; want %v", tt.in, got, err, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("%q: got %v, want %v", tt.in, got, tt.want)
			}
		}
	}
}

func TestStorageCostPer1000AndByteSize(t *testing.T) {
	sc := storageCost{reads: 250}
	if got := sc.per1000(500); got != 2000 {
		t.Errorf("500 writes in 250 reads = %v per 1000, want 2000", got)
	}
	for n, want := range map[float64]string{0: "0 KiB", 1536: "2 KiB", 10 << 20: "10.0 MiB", 133640 * 1024: "130.5 MiB"} {
		if got := byteSize(n); got != want {
			t.Errorf("byteSize(%v) = %q, want %q", n, got, want)
		}
	}
}

func TestGoBenchFailures(t *testing.T) {
	raw := "goos: linux\n--- FAIL: BenchmarkTokenReadCold\n    bench_test.go:77: refused\nBenchmarkTokenReadWarm-2 1 2 ns/op\nFAIL\n"
	got := goBenchFailures(raw)
	if len(got) != 1 || got[0] != "`BenchmarkTokenReadCold`" {
		t.Fatalf("got %v", got)
	}
	if got := goBenchFailures("BenchmarkX-2 1 2 ns/op\nPASS\n"); len(got) != 0 {
		t.Fatalf("a passing run has no failures, got %v", got)
	}
}

func TestPluginWorkNote(t *testing.T) {
	r := &report{goBench: parseGoBench("BenchmarkTokenReadWarm-2 \t 500000 \t 2500 ns/op \t 2789 B/op \t 32 allocs/op\n")}
	got := r.pluginWorkNote([]time.Duration{100 * time.Microsecond, 50 * time.Microsecond})
	if !strings.Contains(got, "2.5 µs") || !strings.Contains(got, "5% of the smallest gap") {
		t.Errorf("note %q: want the in-process cost and its share of the 50 µs gap", got)
	}
	if got := (&report{}).pluginWorkNote([]time.Duration{time.Millisecond}); got != "" {
		t.Errorf("without the Go benchmark the note must be empty, got %q", got)
	}
}
