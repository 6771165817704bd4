package navercommerce

// metrics counts what the engine does for the Prometheus exposition at "metrics". One per
// mount (no global registry). Every method is safe on a nil receiver.
//
// STUB: the status/metrics work (issue 11) replaces this file; the method set is the
// contract the token cache and the token path call.
type metrics struct{}

func newMetrics() *metrics { return &metrics{} }

// Results of a token read, the label "result" of navercommerce_token_reads_total.
const (
	readCached  = "cached"  // served from the cache, no request to Naver
	readFetched = "fetched" // served after a request to Naver
	readStale   = "stale"   // Naver failed or the budget was spent; the cached token was served with a warning
	readFailed  = "failed"  // no token served
)

// tokenRequested records one request to Naver for a token (one per fetch, retries inside it
// included); err is nil on success, an *upstreamError or another error otherwise.
func (m *metrics) tokenRequested(err error) {}

// tokenRead records the result of one token read (readCached, ...).
func (m *metrics) tokenRead(result string) {}

// backgroundRenewal records one renewal by the periodic function or a refresh-ahead.
func (m *metrics) backgroundRenewal(err error) {}

// budgetRefused records a request not sent because the key's hourly budget was spent.
func (m *metrics) budgetRefused() {}
