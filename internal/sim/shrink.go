package sim

import (
	"time"
)

// Shrink looks for a shorter schedule of r's seed that still breaks the promise r broke
// first: it cuts the run after that violation, then removes ever smaller chunks of
// actions (delta debugging) while the failure stays, within budget (wall time).
func Shrink(r Result, budget time.Duration) Result {
	if !r.Failed() {
		return r
	}
	return ShrinkTo(r, budget, r.Violations[0].Invariant)
}

// ShrinkTo is Shrink keeping a violation of invariant target (one r broke), cutting the run
// after its first.
func ShrinkTo(r Result, budget time.Duration, target string) Result {
	first := -1
	for i, v := range r.Violations {
		if v.Invariant == target {
			first = i
			break
		}
	}
	if first < 0 {
		return r
	}
	deadline := time.Now().Add(budget)
	best := r
	fails := func(acts []Action, p Params) (Result, bool) {
		res := runSchedule(r.Seed, p, acts)
		for _, v := range res.Violations {
			if v.Invariant == target {
				return res, true
			}
		}
		return res, false
	}
	// The run can end a minute after the violation.
	p := r.Params
	end := r.Violations[first].At.Sub(epoch) + time.Minute
	if days := end.Hours() / 24; days < p.Days {
		p.Days = days
		var acts []Action
		for _, a := range r.Schedule {
			if a.At < end {
				acts = append(acts, a)
			}
		}
		if res, ok := fails(acts, p); ok {
			best = res
		}
	}
	acts := best.Schedule
	for chunks := 2; len(acts) > 1 && time.Now().Before(deadline); {
		size := (len(acts) + chunks - 1) / chunks
		removed := false
		for start := 0; start < len(acts) && time.Now().Before(deadline); start += size {
			candidate := append(append([]Action(nil), acts[:start]...), acts[min(start+size, len(acts)):]...)
			if res, ok := fails(candidate, best.Params); ok {
				best, acts, removed = res, candidate, true
				chunks = max(chunks-1, 2)
				break
			}
		}
		if !removed {
			if size == 1 {
				break
			}
			chunks = min(chunks*2, len(acts))
		}
	}
	return best
}
