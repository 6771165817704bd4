//go:build acceptance

package acceptance

import (
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestCLIFlow is what a user types: config, roles, list, read (table, JSON, -field),
// path-help, lease renew and revoke, all with the vault CLI. An audit device is on, so the
// audit log is part of the secrets hygiene scan.
func TestCLIFlow(t *testing.T) {
	em := startEmulator(t, emulatorOpts{})
	v := startDevVaultWithEngine(t)
	v.enableAudit(t)

	out := v.cli(t, "write", "navercommerce/config", "client_id="+em.ClientID, "client_secret="+em.ClientSecret, "base_url="+em.URL)
	if !strings.Contains(out, "Success!") {
		t.Fatalf("vault write navercommerce/config said: %s", out)
	}
	v.cli(t, "write", "navercommerce/roles/x", "type=SELLER", "account_id=ncp_cli_seller")
	v.cli(t, "write", "navercommerce/roles/mine", "type=self")

	var roles []string
	mustJSON(t, v.cli(t, "list", "-format=json", "navercommerce/roles"), &roles)
	sort.Strings(roles)
	if strings.Join(roles, ",") != "mine,x" {
		t.Fatalf("vault list navercommerce/roles = %v, want [mine x]", roles)
	}
	if out := v.cli(t, "list", "navercommerce/roles"); !regexp.MustCompile(`(?m)^mine$`).MatchString(out) || !regexp.MustCompile(`(?m)^x$`).MatchString(out) {
		t.Fatalf("vault list navercommerce/roles printed:\n%s", out)
	}
	var role struct {
		Data map[string]any `json:"data"`
	}
	mustJSON(t, v.cli(t, "read", "-format=json", "navercommerce/roles/mine"), &role)
	if role.Data["type"] != "SELF" || role.Data["account_id"] != "" {
		t.Fatalf("role mine = %v; want type SELF (stored upper-case) and no account_id", role.Data)
	}

	// The table a user sees.
	table := v.cli(t, "read", "navercommerce/token/x")
	for _, want := range []string{
		`(?m)^lease_id\s+navercommerce/token/x/\S+$`,
		`(?m)^lease_duration\s+\S+$`,
		`(?m)^lease_renewable\s+false$`,
		`(?m)^access_token\s+\S+$`,
		`(?m)^token_type\s+Bearer$`,
		`(?m)^expires_at\s+\S+$`,
		`(?m)^expires_in\s+\d+$`,
		`(?m)^type\s+SELLER$`,
		`(?m)^account_id\s+ncp_cli_seller$`,
	} {
		if !regexp.MustCompile(want).MatchString(table) {
			t.Errorf("vault read navercommerce/token/x has no line matching %s:\n%s", want, table)
		}
	}
	tableToken := regexp.MustCompile(`(?m)^access_token\s+(\S+)$`).FindStringSubmatch(table)
	if tableToken == nil {
		t.FailNow()
	}
	noteSecret(tableToken[1], "an access token")

	// The JSON a script uses.
	var sec struct {
		LeaseID       string         `json:"lease_id"`
		LeaseDuration int64          `json:"lease_duration"`
		Renewable     bool           `json:"renewable"`
		Data          map[string]any `json:"data"`
		Warnings      []string       `json:"warnings"`
	}
	readAt := time.Now()
	mustJSON(t, v.cli(t, "read", "-format=json", "navercommerce/token/x"), &sec)
	var fields []string
	for k := range sec.Data {
		fields = append(fields, k)
	}
	sort.Strings(fields)
	if got, want := strings.Join(fields, " "), "access_token account_id expires_at expires_in token_type type"; got != want {
		t.Errorf("token data fields = %s, want %s", got, want)
	}
	tok, _ := sec.Data["access_token"].(string)
	noteSecret(tok, "an access token")
	if tok != tableToken[1] {
		t.Errorf("a second read returned another token: the cached token was not served")
	}
	expiresIn := atoi(t, sec.Data["expires_in"])
	expiresAt, err := time.Parse(time.RFC3339, sec.Data["expires_at"].(string))
	if err != nil {
		t.Fatalf("expires_at: %v", err)
	}
	switch {
	case !strings.HasPrefix(sec.LeaseID, "navercommerce/token/x/"):
		t.Errorf("lease_id = %q", sec.LeaseID)
	case sec.Renewable:
		t.Errorf("the lease is renewable; Naver cannot extend a token")
	case expiresIn > 3*3600 || expiresIn < 3*3600-60:
		t.Errorf("expires_in = %d; the emulator's tokens live 10800 s and this one is seconds old", expiresIn)
	case sec.LeaseDuration < expiresIn-1 || sec.LeaseDuration > expiresIn+1:
		t.Errorf("lease_duration = %d, but the token has %d s left: the lease must be the token's remaining life", sec.LeaseDuration, expiresIn)
	case absDuration(expiresAt.Sub(readAt.Add(time.Duration(expiresIn)*time.Second))) > 5*time.Second:
		t.Errorf("expires_at %s does not agree with expires_in %d at %s", expiresAt, expiresIn, readAt.UTC())
	case sec.Data["token_type"] != "Bearer" || sec.Data["type"] != "SELLER" || sec.Data["account_id"] != "ncp_cli_seller":
		t.Errorf("token data = token_type %v, type %v, account_id %v", sec.Data["token_type"], sec.Data["type"], sec.Data["account_id"])
	}
	if len(sec.Warnings) > 0 {
		t.Errorf("a healthy read has warnings: %v", sec.Warnings)
	}

	// The token works at "Naver".
	if status, body := em.callAPI(t, tok); status != 200 || body["accountId"] != "ncp_cli_seller" || body["type"] != "SELLER" {
		t.Errorf("the emulator's API answered %d %v to the token", status, body)
	}
	if field := strings.TrimSpace(v.cli(t, "read", "-field=access_token", "navercommerce/token/x")); field != tok {
		t.Errorf("vault read -field=access_token printed another token")
	}

	// The SELF role is served the token the config write fetched to verify the credentials.
	var self struct {
		Data map[string]any `json:"data"`
	}
	mustJSON(t, v.cli(t, "read", "-format=json", "navercommerce/token/mine"), &self)
	selfTok, _ := self.Data["access_token"].(string)
	noteSecret(selfTok, "an access token")
	if self.Data["type"] != "SELF" || self.Data["account_id"] != "" || !em.valid(t, selfTok) {
		t.Errorf("SELF token data = %v (valid at the emulator: %v)", self.Data, em.valid(t, selfTok))
	}
	st := em.stats(t)
	if got := st.Keys[em.key("SELF", "")].Requests; got != 1 {
		t.Errorf("the emulator saw %d SELF token requests; want 1 (the config verification, then the cache)", got)
	}
	if got := st.Keys[em.key("SELLER", "ncp_cli_seller")].Requests; got != 1 {
		t.Errorf("the emulator saw %d SELLER token requests for 4 reads; want 1", got)
	}
	if len(st.Violations) > 0 {
		t.Errorf("the emulator recorded violations: %v", st.Violations)
	}

	help := v.cli(t, "path-help", "navercommerce/token/x")
	for _, want := range []string{"Read a Naver Commerce access token", "name (string)", "lease"} {
		if !strings.Contains(help, want) {
			t.Errorf("vault path-help navercommerce/token/x does not mention %q:\n%s", want, help)
		}
	}
	if help := v.cli(t, "path-help", "navercommerce/config"); !strings.Contains(help, "client_secret") {
		t.Errorf("vault path-help navercommerce/config does not document client_secret")
	}
	// Vault's OpenAPI document (what the UI and code generators read) covers the engine.
	var spec struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	mustJSON(t, v.cli(t, "read", "-format=raw", "sys/internal/specs/openapi"), &spec)
	for _, p := range []string{"/navercommerce/config", "/navercommerce/roles/", "/navercommerce/roles/{name}", "/navercommerce/token/{name}"} {
		if _, ok := spec.Paths[p]; !ok {
			t.Errorf("Vault's OpenAPI document has no path %s", p)
		}
	}

	// Writing the same config again, the secret read from a file (with the file's trailing
	// newline, which is trimmed), changes nothing: no request to Naver, the same token.
	secretFile := filepath.Join(v.dir, "client-secret.txt")
	writeFile(t, secretFile, em.ClientSecret+"\n")
	v.cli(t, "write", "navercommerce/config", "client_id="+em.ClientID, "client_secret=@"+secretFile, "base_url="+em.URL)
	if again := strings.TrimSpace(v.cli(t, "read", "-field=access_token", "navercommerce/token/x")); again != tok {
		t.Errorf("rewriting the same config dropped the cached token")
	}
	if n := em.stats(t).TokenRequests; n != 2 {
		t.Errorf("rewriting the same config made the emulator count %d token requests, want still 2", n)
	}

	// Renewing fails (not renewable); revoking succeeds and leaves the token usable.
	if out, err := v.cliErr("lease", "renew", sec.LeaseID); err == nil {
		t.Errorf("vault lease renew of a non-renewable token lease succeeded: %s", out)
	}
	v.cli(t, "lease", "revoke", sec.LeaseID)
	if !em.valid(t, tok) {
		t.Errorf("revoking the lease made the token invalid at the emulator")
	}

	// The config never shows the secret, in any format.
	for _, format := range []string{"table", "json", "yaml"} {
		out := v.cli(t, "read", "-format="+format, "navercommerce/config")
		if strings.Contains(out, "client_secret") || strings.Contains(out, em.ClientSecret) || strings.Contains(out, em.ClientSecret[7:]) {
			t.Errorf("vault read -format=%s navercommerce/config shows the client secret:\n%s", format, out)
		}
		if !strings.Contains(out, em.ClientID) || !strings.Contains(out, em.URL) {
			t.Errorf("vault read -format=%s navercommerce/config lacks client_id or base_url:\n%s", format, out)
		}
	}
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// TestCLIErrorsSayWhatIsAllowed: through a real Vault and the plugin's gRPC boundary, a bad
// value, a bad role name, a malformed secret and a seller that has not authorised the
// application each get an error a user can act on.
func TestCLIErrorsSayWhatIsAllowed(t *testing.T) {
	em := startEmulator(t, emulatorOpts{AccountIDs: []string{"ncp_cli_known"}})
	v := startDevVaultWithEngine(t)
	v.configure(t, "navercommerce", em, "max_retries=0")
	v.write(t, "navercommerce/roles/typo", "type=SELLER", "account_id=ncp_cli_knwon")

	for _, tt := range []struct {
		args    []string
		want    []string
		wantNot []string
	}{
		{[]string{"write", "navercommerce/roles/r", "type=SELF", "lease=maybe"},
			[]string{`lease: "maybe" is not valid`, "true or false"}, []string{"cannot parse"}},
		{[]string{"write", "navercommerce/roles/bad_name!", "type=SELF"},
			[]string{`role name "bad_name!" is not allowed`, `letters, digits and "_"`}, []string{"unsupported path"}},
		{[]string{"read", "navercommerce/token/bad_name!"},
			[]string{`role name "bad_name!" is not allowed`}, []string{"unsupported path"}},
		{[]string{"write", "navercommerce/config", "client_secret=" + em.ClientSecret + "mkgWHhD5UNbHprCG2.USOiBzWBlJid2"},
			[]string{"client_secret: must be a bcrypt salt", "has 60 characters"}, []string{em.ClientSecret[7:]}},
		{[]string{"read", "navercommerce/token/typo"},
			[]string{"GW.AUTHN", `account_id "ncp_cli_knwon"`, "check the role's account_id"}, []string{"clock", "check client_secret"}},
	} {
		out, err := v.cliErr(tt.args...)
		if err == nil {
			t.Errorf("vault %s succeeded: %s", strings.Join(tt.args, " "), out)
			continue
		}
		text := out + err.Error()
		for _, want := range tt.want {
			if !strings.Contains(text, want) {
				t.Errorf("vault %s: %q does not say %q", strings.Join(tt.args, " "), text, want)
			}
		}
		for _, not := range tt.wantNot {
			if strings.Contains(text, not) {
				t.Errorf("vault %s: %q has %q", strings.Join(tt.args, " "), text, not)
			}
		}
	}
}
