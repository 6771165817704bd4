package sim

import (
	"testing"
)

func TestPeakAndMean(t *testing.T) {
	cases := []struct {
		perMinute []int
		width     int
		peak      int
		mean      float64
	}{
		{[]int{1, 2, 3, 4}, 1, 4, 2.5},
		{[]int{1, 2, 3, 4}, 2, 7, 5},
		{[]int{0, 0, 0, 0}, 2, 0, 0},
	}
	for _, c := range cases {
		peak, mean := peakAndMean(c.perMinute, c.width)
		if peak != c.peak || mean != c.mean {
			t.Errorf("peakAndMean(%v, %d) = %d, %g; want %d, %g", c.perMinute, c.width, peak, mean, c.peak, c.mean)
		}
	}
}

// TestLongShapeSmall runs the long shape (a many-seller role beside single-account roles)
// small enough for make test, so its model is checked on every commit.
func TestLongShapeSmall(t *testing.T) {
	p := LongParams()
	p.Days, p.ManySellers = 1, 20
	for _, seed := range []uint64{1, 2} {
		r := Run(seed, p)
		if _, others := splitKnown([]Result{r}); len(others) > 0 {
			t.Error(failureReport(r))
		}
		if r.Stats.ReadsServed == 0 {
			t.Errorf("seed %d: no read served: %s", seed, summary(r))
		}
	}
}

// TestSellersWeekSmall is the sellers week at 200 sellers over 2 days: every promise holds,
// Naver does not penalise, and each seller costs about one request per renewal cycle.
func TestSellersWeekSmall(t *testing.T) {
	sellers := 200
	if raceEnabled || testing.Short() {
		sellers = 50 // make test runs under -race: a tenth of the speed
	}
	wk := RunSellersWeek(sellers, 2, sellersWeekOnboarding, sellersWeekReadEvery)
	if wk.Result.Failed() {
		t.Error(failureReport(wk.Result))
	}
	if wk.Penalised {
		t.Error("Naver penalised the application")
	}
	total := 0
	for _, n := range wk.PerMinute {
		total += n
	}
	// A token lives 3 hours and is renewed in its last 30 minutes: at most ~10 a day a
	// seller, fewer for sellers whose app paused past a token's life.
	perSellerDay := float64(total) / float64(sellers) / 2
	if perSellerDay < 5 || perSellerDay > 11 {
		t.Errorf("%.2f Naver requests per seller per day, want 5 to 11", perSellerDay)
	}
	if served := float64(wk.Result.Stats.ReadsServed) / float64(wk.Result.Stats.Reads); served < 0.97 {
		t.Errorf("%.3f of reads served, want at least 0.97 (%s)", served, summary(wk.Result))
	}
}
