package navercommerce

// The Naver client's side of the budgets: every HTTP attempt of a token request, retries
// included, is let through by the core first (see core.AttemptAsk), which counts it in the
// key's and the application's budgets and stores the application's counts before it goes.

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/internal/core"
)

// attemptGate lets the attempts of one request go only when the core says so.
type attemptGate struct {
	c        *tokenCache
	req      core.ReqID
	verdicts chan core.AttemptVerdict
	// cleared: the core counted the first attempt in storage already.
	cleared bool
	// sent: an attempt went to Naver.
	sent bool
	// countedAt: when the budgets counted the attempt that leaves now (see AttemptCountedAt).
	countedAt time.Time
}

type attemptGateKey struct{}

func withAttemptGate(ctx context.Context, g *attemptGate) context.Context {
	return context.WithValue(ctx, attemptGateKey{}, g)
}

func attemptGateFrom(ctx context.Context) *attemptGate {
	g, _ := ctx.Value(attemptGateKey{}).(*attemptGate)
	return g
}

// first waits until the first attempt may be sent: its count is in storage (the write runs
// while the attempt is signed). An error means it is not sent.
func (g *attemptGate) first(ctx context.Context) error {
	if !g.cleared {
		if err := g.wait(ctx); err != nil {
			return err
		}
	}
	g.sending()
	g.sent = true
	return nil
}

// sending tells the core the attempt leaves now: the key counts it from now (the write and
// the signing it waited for took a while since the core decided it).
func (g *attemptGate) sending() {
	g.countedAt = g.c.now()
	g.c.step(nil, core.AttemptSending{Now: g.countedAt, Req: g.req})
}

// mayRetry reports whether another attempt may follow (not counting it yet).
func (g *attemptGate) mayRetry(ctx context.Context) bool {
	g.c.step(nil, core.AttemptAsk{Now: g.c.now(), Req: g.req, Check: true})
	return g.wait(ctx) == nil
}

// retry counts the next attempt, after its wait, and waits until it may be sent.
func (g *attemptGate) retry(ctx context.Context) error {
	g.c.step(nil, core.AttemptAsk{Now: g.c.now(), Req: g.req})
	if err := g.wait(ctx); err != nil {
		return err
	}
	g.sending()
	return nil
}

func (g *attemptGate) wait(ctx context.Context) error {
	select {
	case v := <-g.verdicts:
		if !v.Go {
			if v.Err == nil {
				return errors.New("the attempt was not allowed")
			}
			return v.Err
		}
		return nil
	case <-ctx.Done():
		return &upstreamError{Err: ctx.Err()}
	}
}

// AttemptCountedAt reports when the key's budget counted the HTTP attempt of a token
// request that req is (the instant the core was told it leaves, after the write of the
// application's counts it waited for), for a program that runs the backend in process with
// a shared fake clock (the simulator): another goroutine may move that clock between the
// count and the transport, so a model of the key's budget must judge the attempt at this
// instant, not at its own reading of the clock. False for requests the budgets do not
// count (the connection check, a drop's question whether Naver still accepts a token).
func AttemptCountedAt(req *http.Request) (time.Time, bool) {
	g := attemptGateFrom(req.Context())
	if g == nil || g.countedAt.IsZero() {
		return time.Time{}, false
	}
	return g.countedAt, true
}
