package main

import (
	"fmt"
	"strings"
	"time"
)

// Warm reads of some targets, interleaved in rounds.

// warm measures the dev server's three targets.
func (e *env) warm(r *report) error {
	w, err := e.measureWarm(e.targets(), e.o.concurrency, e.o.rounds, e.o.roundDur)
	if err != nil {
		return err
	}
	r.warm, r.cpuBusy, r.cpuOthers = w.stats, w.cpuBusy, w.cpuOthers
	for _, c := range e.o.concurrency {
		r.leases += r.warm[c]["token"].N + r.warm[c]["no-op"].N
	}
	return nil
}

// warmResult is the warm reads of some targets at some concurrencies.
type warmResult struct {
	stats              map[int]map[string]stats // concurrency → target → stats
	cpuBusy, cpuOthers float64                  // shares of all CPUs, see report
}

// measureWarm measures targets interleaved: for each concurrency, an unmeasured round of
// each, then rounds in rotating order so that drift and other load hit all alike.
func (e *env) measureWarm(ts []target, concurrency []int, rounds int, roundDur time.Duration) (warmResult, error) {
	w := warmResult{stats: map[int]map[string]stats{}}
	busy0, total0 := systemTicks()
	ours0 := e.ourTicks()
	for _, c := range concurrency {
		logf("warm reads at concurrency %d: %d rounds of %s per target, interleaved", c, rounds, roundDur)
		for _, t := range ts {
			if rd := runRound(e.ctx, e.c, t, c, e.o.warmupDur, e.o.maxPerRound); rd.err != nil {
				return w, rd.err
			}
		}
		lat := map[string][]time.Duration{}
		elapsed := map[string]time.Duration{}
		for i := range rounds {
			for j := range ts {
				t := ts[(i+j)%len(ts)]
				rd := runRound(e.ctx, e.c, t, c, roundDur, e.o.maxPerRound)
				if rd.err != nil {
					return w, rd.err
				}
				lat[t.name] = append(lat[t.name], rd.lat...)
				elapsed[t.name] += rd.elapsed
			}
		}
		w.stats[c] = map[string]stats{}
		var line []string
		for _, t := range ts {
			w.stats[c][t.name] = summarise(lat[t.name], elapsed[t.name], 0)
			line = append(line, fmt.Sprintf("%s %s", t.name, ms(w.stats[c][t.name].P50)))
		}
		logf("  c=%d p50 %s", c, strings.Join(line, ", "))
	}
	busy1, total1 := systemTicks()
	ours1 := e.ourTicks()
	if total1 > total0 {
		// /proc/stat counts all CPUs; a process's ticks are in the same unit.
		w.cpuBusy = float64(busy1-busy0) / float64(total1-total0)
		w.cpuOthers = max(0, float64((busy1-busy0)-(ours1-ours0))/float64(total1-total0))
	}
	return w, nil
}
