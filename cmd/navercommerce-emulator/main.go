// Command navercommerce-emulator serves the Naver Commerce token API
// emulator (package navercommercetest) on a loopback address, for demos and
// for tests that drive a separate process through its /_emulator/ admin
// endpoints.
//
// Every flag has an environment fallback (flag > environment > default):
//
//	-listen           NAVER_EMULATOR_LISTEN           127.0.0.1:9443 (loopback only; port 0 picks one)
//	-client-id        NAVER_EMULATOR_CLIENT_ID        demo-client-id
//	-client-secret    NAVER_EMULATOR_CLIENT_SECRET    $2a$04$QKLnou1D2cSH19Pia30bcu
//	-account-ids      NAVER_EMULATOR_ACCOUNT_IDS      comma list; empty = any seller
//	-token-lifetime   NAVER_EMULATOR_TOKEN_LIFETIME   3h
//	-reuse-threshold  NAVER_EMULATOR_REUSE_THRESHOLD  30m
//	-timestamp-window NAVER_EMULATOR_TIMESTAMP_WINDOW 5m
//	-base-path        NAVER_EMULATOR_BASE_PATH        /external (/partner for agencies)
//	-url-file         NAVER_EMULATOR_URL_FILE         write the base URL here once listening (removed on exit)
//	-tls              NAVER_EMULATOR_TLS              false: serve HTTPS with a fresh self-signed certificate
//	                                                  for 127.0.0.1, ::1 and localhost
//	-tls-cert-file    NAVER_EMULATOR_TLS_CERT_FILE    write that certificate's PEM here (needs -tls; written
//	                                                  before -url-file, removed on exit), e.g. for another
//	                                                  process's SSL_CERT_FILE
//	-tls-hostname     NAVER_EMULATOR_TLS_HOSTNAME     empty: one more DNS name for the certificate (needs -tls),
//	                                                  e.g. naver-emulator.test for a client that reaches the
//	                                                  emulator through a proxy mapping that name to it
//	-latency          NAVER_EMULATOR_LATENCY          0: hold every token request this long before judging it
//	-latency-jitter   NAVER_EMULATOR_LATENCY_JITTER   0: plus a uniformly random 0..jitter
//	-reused-token-full-lifetime
//	                  NAVER_EMULATOR_REUSED_TOKEN_FULL_LIFETIME
//	                                                  false: a token handed back again reports expires_in as its
//	                                                  full lifetime instead of its remaining life
//	-jwt-tokens       NAVER_EMULATOR_JWT_TOKENS       false: mint JWT-shaped tokens carrying exp
//	-penalty          NAVER_EMULATOR_PENALTY          true: model Naver's penalty (429 GW.RATE_LIMIT, about one
//	                                                  token request per hour) for violations and over-asking
//	-penalty-violations-allowed
//	                  NAVER_EMULATOR_PENALTY_VIOLATIONS_ALLOWED
//	                                                  0: violations tolerated per sliding hour (negative: any)
//	-penalty-requests-per-hour
//	                  NAVER_EMULATOR_PENALTY_REQUESTS_PER_HOUR
//	                                                  60: token requests per application per sliding hour
//	                                                  (negative: no budget)
//	-penalty-duration NAVER_EMULATOR_PENALTY_DURATION 1h: how long a penalty lasts after the last offence
//
// Boolean environment values are those of strconv.ParseBool (1, true, 0,
// false, ...). The settings can be changed at run time through the admin
// endpoints (see package navercommercetest); the penalty state is in
// GET /_emulator/stats. An outage is rehearsed with the same endpoints:
//
//	POST   /_emulator/faults {"status":503,"count":1000}                 every token request fails
//	POST   /_emulator/faults {"status":503,"count":1000,"account_id":"ncp_1"}  one seller's only
//	                         (or "type":"SELF" / "SELLER": one type's only)
//	DELETE /_emulator/faults                                              the outage ends; tokens stay valid
//
// POST /_emulator/reset ends it too, but forgets every token handed out.
//
// When ready it prints one line to stdout:
//
//	navercommerce-emulator: listening on http://127.0.0.1:PORT/external
//
// (https:// with -tls).
//
// Its first line on stderr, before the flags are parsed, is
//
//	navercommerce-emulator: starting (pid PID)
//
// Each token request is logged to stderr without secrets, signatures or
// tokens. SIGINT or SIGTERM shuts it down gracefully.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/navercommercetest"
)

// defaultSecret is Naver's documented example secret, so the documented test
// vector works against a default emulator.
const defaultSecret = "$2a$04$QKLnou1D2cSH19Pia30bcu"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "navercommerce-emulator: %v\n", err)
		stop()
		os.Exit(1)
	}
}

type options struct {
	listen          string
	clientID        string
	clientSecret    string
	accountIDs      string
	tokenLifetime   time.Duration
	reuseThreshold  time.Duration
	timestampWindow time.Duration
	basePath        string
	urlFile         string

	tls         bool
	tlsCertFile string
	tlsHostname string

	latency                 time.Duration
	latencyJitter           time.Duration
	reusedTokenFullLifetime bool
	jwtTokens               bool

	penalty                  bool
	penaltyViolationsAllowed int
	penaltyRequestsPerHour   int
	penaltyDuration          time.Duration
}

// penaltyConfig is the emulator's penalty configuration for o.
func (o options) penaltyConfig() navercommercetest.PenaltyConfig {
	return navercommercetest.PenaltyConfig{
		Disabled:          !o.penalty,
		ViolationsAllowed: o.penaltyViolationsAllowed,
		RequestsPerHour:   o.penaltyRequestsPerHour,
		Duration:          o.penaltyDuration,
	}
}

func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("navercommerce-emulator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	// A malformed environment value is an error, not a silent default.
	var envErr error
	envDuration := func(name string, def time.Duration) time.Duration {
		return envValue(getenv, name, def, time.ParseDuration, &envErr)
	}
	envBool := func(name string, def bool) bool {
		return envValue(getenv, name, def, strconv.ParseBool, &envErr)
	}
	envInt := func(name string, def int) int {
		return envValue(getenv, name, def, strconv.Atoi, &envErr)
	}

	var o options
	fs.StringVar(&o.listen, "listen", env("NAVER_EMULATOR_LISTEN", "127.0.0.1:9443"), "loopback `host:port` to listen on (port 0 picks a free one)")
	fs.StringVar(&o.clientID, "client-id", env("NAVER_EMULATOR_CLIENT_ID", "demo-client-id"), "application client ID")
	fs.StringVar(&o.clientSecret, "client-secret", env("NAVER_EMULATOR_CLIENT_SECRET", defaultSecret), "application client secret (a bcrypt salt like $2a$04$...)")
	fs.StringVar(&o.accountIDs, "account-ids", env("NAVER_EMULATOR_ACCOUNT_IDS", ""), "comma-separated seller account IDs that authorised the application (empty = any)")
	fs.DurationVar(&o.tokenLifetime, "token-lifetime", envDuration("NAVER_EMULATOR_TOKEN_LIFETIME", navercommercetest.DefaultTokenLifetime), "lifetime of minted tokens")
	fs.DurationVar(&o.reuseThreshold, "reuse-threshold", envDuration("NAVER_EMULATOR_REUSE_THRESHOLD", navercommercetest.DefaultReuseThreshold), "a token with at least this much left is returned again")
	fs.DurationVar(&o.timestampWindow, "timestamp-window", envDuration("NAVER_EMULATOR_TIMESTAMP_WINDOW", navercommercetest.DefaultTimestampWindow), "how old a request timestamp may be")
	fs.StringVar(&o.basePath, "base-path", env("NAVER_EMULATOR_BASE_PATH", navercommercetest.DefaultBasePath), "API base path")
	fs.StringVar(&o.urlFile, "url-file", env("NAVER_EMULATOR_URL_FILE", ""), "write the base URL to this `path` once listening")
	fs.BoolVar(&o.tls, "tls", envBool("NAVER_EMULATOR_TLS", false), "serve HTTPS with a fresh self-signed certificate for 127.0.0.1, ::1 and localhost")
	fs.StringVar(&o.tlsCertFile, "tls-cert-file", env("NAVER_EMULATOR_TLS_CERT_FILE", ""), "write the certificate's PEM to this `path` (needs -tls), e.g. for SSL_CERT_FILE")
	fs.StringVar(&o.tlsHostname, "tls-hostname", env("NAVER_EMULATOR_TLS_HOSTNAME", ""), "also name this DNS `name` in the certificate (needs -tls), e.g. for a client that reaches the emulator through a proxy")
	fs.DurationVar(&o.latency, "latency", envDuration("NAVER_EMULATOR_LATENCY", 0), "hold every token request this long before judging it")
	fs.DurationVar(&o.latencyJitter, "latency-jitter", envDuration("NAVER_EMULATOR_LATENCY_JITTER", 0), "add a uniformly random 0..this to the latency")
	fs.BoolVar(&o.reusedTokenFullLifetime, "reused-token-full-lifetime", envBool("NAVER_EMULATOR_REUSED_TOKEN_FULL_LIFETIME", false), "a token handed back again reports expires_in as its full lifetime")
	fs.BoolVar(&o.jwtTokens, "jwt-tokens", envBool("NAVER_EMULATOR_JWT_TOKENS", false), "mint JWT-shaped tokens carrying exp")
	fs.BoolVar(&o.penalty, "penalty", envBool("NAVER_EMULATOR_PENALTY", true), "model Naver's penalty for violations and over-asking (-penalty=false turns it off)")
	fs.IntVar(&o.penaltyViolationsAllowed, "penalty-violations-allowed", envInt("NAVER_EMULATOR_PENALTY_VIOLATIONS_ALLOWED", 0), "violations tolerated per application per sliding hour before the penalty (negative: any)")
	fs.IntVar(&o.penaltyRequestsPerHour, "penalty-requests-per-hour", envInt("NAVER_EMULATOR_PENALTY_REQUESTS_PER_HOUR", navercommercetest.DefaultPenaltyRequestsPerHour), "token requests per application per sliding hour before the penalty (negative: no budget)")
	fs.DurationVar(&o.penaltyDuration, "penalty-duration", envDuration("NAVER_EMULATOR_PENALTY_DURATION", navercommercetest.DefaultPenaltyDuration), "how long a penalty lasts after the last offence")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if envErr != nil {
		return options{}, envErr
	}
	if o.clientID == "" {
		return options{}, errors.New("-client-id must not be empty")
	}
	// Naver's secrets are often pasted with stray white space.
	o.clientSecret = strings.TrimSpace(o.clientSecret)
	if err := navercommercetest.CheckClientSecret(o.clientSecret); err != nil {
		return options{}, fmt.Errorf("-client-secret: %w", err)
	}
	for name, d := range map[string]time.Duration{"-token-lifetime": o.tokenLifetime, "-reuse-threshold": o.reuseThreshold, "-timestamp-window": o.timestampWindow, "-penalty-duration": o.penaltyDuration} {
		if d <= 0 {
			return options{}, fmt.Errorf("%s must be positive, got %v", name, d)
		}
	}
	for name, d := range map[string]time.Duration{"-latency": o.latency, "-latency-jitter": o.latencyJitter} {
		if d < 0 {
			return options{}, fmt.Errorf("%s must not be negative, got %v", name, d)
		}
	}
	if o.penaltyRequestsPerHour == 0 {
		return options{}, errors.New("-penalty-requests-per-hour must not be 0 (negative: no budget; -penalty=false turns the penalty off)")
	}
	if o.tlsCertFile != "" && !o.tls {
		return options{}, errors.New("-tls-cert-file needs -tls")
	}
	if o.tlsHostname != "" {
		if !o.tls {
			return options{}, errors.New("-tls-hostname needs -tls")
		}
		if err := checkDNSName(o.tlsHostname); err != nil {
			return options{}, fmt.Errorf("-tls-hostname: %w", err)
		}
	}
	return o, nil
}

// envValue parses the environment variable name, or returns def when it is
// empty; a parse error is joined to *errs (naming the variable) and def
// returned.
func envValue[T any](getenv func(string) string, name string, def T, parse func(string) (T, error), errs *error) T {
	v := getenv(name)
	if v == "" {
		return def
	}
	x, err := parse(v)
	if err != nil {
		*errs = errors.Join(*errs, fmt.Errorf("%s: %w", name, err))
		return def
	}
	return x
}

// checkLoopback refuses anything but a loopback host: the emulator accepts
// any token request it can verify and must not be reachable from outside.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-listen %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("-listen %q: refusing a non-loopback host; use 127.0.0.1, ::1 or localhost", addr)
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	// First, before anything can fail: a log that lacks even this line tells whoever started
	// the emulator that it died before it ran (killed, or never started), not of a bad flag.
	fmt.Fprintf(stderr, "navercommerce-emulator: starting (pid %d)\n", os.Getpid())
	o, err := parseFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	if err := checkLoopback(o.listen); err != nil {
		return err
	}
	var accounts []string
	for _, id := range strings.Split(o.accountIDs, ",") {
		if id = strings.TrimSpace(id); id != "" {
			accounts = append(accounts, id)
		}
	}

	logger := log.New(stderr, "navercommerce-emulator: ", log.LstdFlags|log.Lmicroseconds)
	emu := navercommercetest.New(navercommercetest.Config{
		Applications:            []navercommercetest.Application{{ClientID: o.clientID, ClientSecret: o.clientSecret, AccountIDs: accounts}},
		TokenLifetime:           o.tokenLifetime,
		ReuseThreshold:          o.reuseThreshold,
		TimestampWindow:         o.timestampWindow,
		BasePath:                o.basePath,
		Logger:                  logger,
		Latency:                 o.latency,
		LatencyJitter:           o.latencyJitter,
		ReusedTokenFullLifetime: o.reusedTokenFullLifetime,
		JWTTokens:               o.jwtTokens,
		Penalty:                 o.penaltyConfig(),
	})

	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", o.listen, err)
	}
	// "localhost" could resolve to something else on an odd system.
	if tcp, ok := ln.Addr().(*net.TCPAddr); !ok || !tcp.IP.IsLoopback() {
		ln.Close()
		return fmt.Errorf("listening on %s: got non-loopback address %s", o.listen, ln.Addr())
	}
	scheme := "http"
	var certPEM []byte
	if o.tls {
		var listenIP net.IP
		if tcp, ok := ln.Addr().(*net.TCPAddr); ok {
			listenIP = tcp.IP
		}
		cert, pemBytes, err := selfSignedCertificate(time.Now(), listenIP, o.tlsHostname)
		if err != nil {
			ln.Close()
			return err
		}
		// HTTP/1.1 only, like httptest's TLS server: the DropConnection
		// fault needs to hijack the connection.
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}, MinVersion: tls.VersionTLS12})
		scheme, certPEM = "https", pemBytes
	}
	baseURL := scheme + "://" + ln.Addr().String() + emu.BasePath()

	srv := &http.Server{
		Handler:           emu,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          logger,
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	if o.tlsCertFile != "" {
		if err := writeFileAtomic(o.tlsCertFile, string(certPEM)); err != nil {
			srv.Close()
			return fmt.Errorf("writing -tls-cert-file: %w", err)
		}
		// A stale certificate would make clients trust a dead emulator's key.
		defer os.Remove(o.tlsCertFile)
	}

	if o.urlFile != "" {
		if err := writeFileAtomic(o.urlFile, baseURL+"\n"); err != nil {
			srv.Close()
			return fmt.Errorf("writing -url-file: %w", err)
		}
		// A stale file would point scripts at a dead emulator.
		defer os.Remove(o.urlFile)
	}
	fmt.Fprintf(stdout, "navercommerce-emulator: listening on %s\n", baseURL)
	logger.Printf("client_id=%q account_ids=%q token_lifetime=%v reuse_threshold=%v timestamp_window=%v latency=%v latency_jitter=%v reused_token_full_lifetime=%v jwt_tokens=%v admin=%s://%s/_emulator/",
		o.clientID, accounts, o.tokenLifetime, o.reuseThreshold, o.timestampWindow, o.latency, o.latencyJitter, o.reusedTokenFullLifetime, o.jwtTokens, scheme, ln.Addr())
	if p := emu.PenaltySettings(); p.Disabled {
		logger.Printf("penalty: off")
	} else {
		logger.Printf("penalty: on: violations_allowed=%d requests_per_hour=%d duration=%v (-1 = unlimited)", p.ViolationsAllowed, p.RequestsPerHour, p.Duration)
	}

	select {
	case err := <-serveErr:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	logger.Printf("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		// Requests held by fault delays: closing their connections cancels
		// their contexts, which ends the delays.
		logger.Printf("graceful shutdown incomplete (%v); closing connections", err)
		srv.Close()
	}
	if err := <-serveErr; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving: %w", err)
	}
	return nil
}

// writeFileAtomic writes data to path via a temporary file and a rename, so
// a script polling for path never reads a partial URL.
func writeFileAtomic(path, data string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
