package main

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/vault/api"
)

// target is one path read under load, with a check that the answer is the expected kind.
type target struct {
	name  string
	path  string
	check func(*api.Secret) error
	// spread > 0: each read names one of spread sellers at random, path/<account_id>, so
	// the reads fall on as many keys (a many-seller role).
	spread int
}

// pathFor is the path of one read: t.path, or one seller's under it.
func (t target) pathFor(rng *rand.Rand) string {
	if t.spread <= 0 {
		return t.path
	}
	return t.path + "/" + sellerAccount(rng.IntN(t.spread))
}

// sellerAccount is the account ID of the bench's seller i (as long as a Naver one).
func sellerAccount(i int) string { return fmt.Sprintf("ncp_bench_%05d", i) }

func leased(s *api.Secret) error {
	if s == nil || s.Data == nil {
		return fmt.Errorf("empty response")
	}
	if s.LeaseID == "" || s.Renewable {
		return fmt.Errorf("want a non-renewable lease, got lease %q renewable=%v", s.LeaseID, s.Renewable)
	}
	if tok, _ := s.Data["access_token"].(string); tok == "" {
		return fmt.Errorf("no access_token")
	}
	return nil
}

func kvData(s *api.Secret) error {
	if s == nil || s.Data == nil {
		return fmt.Errorf("empty response")
	}
	if _, ok := s.Data["data"].(map[string]any); !ok {
		return fmt.Errorf("no data in kv-v2 response")
	}
	return nil
}

// round is one bounded burst of reads of one target at one concurrency.
type round struct {
	lat     []time.Duration
	elapsed time.Duration
	errs    int
	err     error // the first error
}

// runRound reads t.path with c workers until dur has passed or maxReq reads were made.
func runRound(ctx context.Context, client *api.Client, t target, c int, dur time.Duration, maxReq int64) round {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		out      round
		issued   atomic.Int64
		deadline = time.Now().Add(dur)
	)
	ctx, cancel := context.WithDeadline(ctx, deadline.Add(30*time.Second))
	defer cancel()
	start := time.Now()
	for w := range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), uint64(start.UnixNano())))
			lat := make([]time.Duration, 0, 4096)
			var errs int
			var first error
			for time.Now().Before(deadline) && issued.Add(1) <= maxReq && ctx.Err() == nil {
				t0 := time.Now()
				path := t.pathFor(rng)
				s, err := client.Logical().ReadWithContext(ctx, path)
				d := time.Since(t0)
				if err == nil {
					err = t.check(s)
				}
				if err != nil {
					errs++
					if first == nil {
						first = fmt.Errorf("read %s: %w", path, err)
					}
					continue
				}
				lat = append(lat, d)
			}
			mu.Lock()
			out.lat = append(out.lat, lat...)
			out.errs += errs
			if out.err == nil {
				out.err = first
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	out.elapsed = time.Since(start)
	return out
}

// stats summarises latencies.
type stats struct {
	N             int
	P50, P99, Max time.Duration
	Mean          time.Duration
	RPS           float64 // 0 when not measured
	Errors        int
}

func summarise(lat []time.Duration, elapsed time.Duration, errs int) stats {
	s := stats{N: len(lat), Errors: errs}
	if len(lat) == 0 {
		return s
	}
	sorted := slices.Clone(lat)
	slices.Sort(sorted)
	s.P50 = percentile(sorted, 0.50)
	s.P99 = percentile(sorted, 0.99)
	s.Max = sorted[len(sorted)-1]
	var sum time.Duration
	for _, d := range sorted {
		sum += d
	}
	s.Mean = sum / time.Duration(len(sorted))
	if elapsed > 0 {
		s.RPS = float64(len(lat)) / elapsed.Seconds()
	}
	return s
}

// percentile is the nearest-rank percentile of sorted.
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return sorted[i]
}

// timeN times n calls of f, one at a time.
func timeN(n int, f func(i int) error) (stats, error) {
	lat := make([]time.Duration, 0, n)
	start := time.Now()
	for i := range n {
		t0 := time.Now()
		if err := f(i); err != nil {
			return stats{}, err
		}
		lat = append(lat, time.Since(t0))
	}
	return summarise(lat, time.Since(start), 0), nil
}

// parallel runs f(i) for i in [0, n) on w workers and returns the first error.
func parallel(n, w int, f func(i int) error) error {
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for range w {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}
