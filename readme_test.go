package navercommerce

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// README.ko.md is a full Korean README, not a translation kept in step by hand: this test is
// what keeps its API reference from falling behind README.md's.

const (
	englishReadme = "README.md"
	koreanReadme  = "README.ko.md"
)

func TestReadmeKoreanCoversEveryAPIName(t *testing.T) {
	english := readFile(t, englishReadme)
	korean := readFile(t, koreanReadme)

	names := apiNames(english)
	// Guards against a test that passes because the parser found nothing (a renamed section,
	// a changed heading style).
	if len(names) < 10 || !slices.Contains(names, "navercommerce/config") || !slices.Contains(names, "client_secret") {
		t.Fatalf("found only %d names in %s's API section (%v): has its layout changed?", len(names), englishReadme, names)
	}
	if missing := missingNames(names, korean); len(missing) > 0 {
		t.Errorf("%s's API section names these, %s does not (in code font): %s", englishReadme, koreanReadme, strings.Join(missing, ", "))
	}
}

func TestReadmeLinksBothWays(t *testing.T) {
	tests := []struct {
		file, target string
	}{
		{englishReadme, koreanReadme},
		{koreanReadme, englishReadme},
	}
	for _, tt := range tests {
		if !strings.Contains(readFile(t, tt.file), "]("+tt.target+")") {
			t.Errorf("%s has no markdown link to %s", tt.file, tt.target)
		}
	}
}

// The checking functions on small texts: a name dropped from the Korean text must be reported.
func TestReadmeCheckFunctions(t *testing.T) {
	const english = "# Title\n\n" +
		"## Install\n\n" +
		"| field | rules |\n|---|---|\n| `not_api` | outside the API section |\n\n" +
		"## API\n\n" +
		"### `navercommerce/config` — read\n\n" +
		"| field | default | rules |\n|---|---|---|\n" +
		"| `client_id` | — | required |\n" +
		"| `ttl` | `0` | a `pipe \\| inside` the rules |\n\n" +
		"Prose mentioning `prose_only` is not a table.\n\n" +
		"```\n## not a heading\n| `in_code` | x |\n```\n\n" +
		"### `navercommerce/roles/<name>` — read; `navercommerce/roles` — list\n\n" +
		"| field | meaning |\n|---|---|\n| `type`, `account_id` | the role's |\n\n" +
		"## Caching\n\n" +
		"| field | x |\n|---|---|\n| `after_api` | x |\n"

	wantNames := []string{"navercommerce/config", "client_id", "ttl", "navercommerce/roles/<name>", "navercommerce/roles", "type", "account_id"}
	if got := apiNames(english); !slices.Equal(got, wantNames) {
		t.Fatalf("apiNames = %q, want %q", got, wantNames)
	}

	complete := "`navercommerce/config` `navercommerce/roles/<name>` `navercommerce/roles` `client_id` `ttl` `type` `account_id`"
	tests := []struct {
		name        string
		korean      string
		wantMissing []string
	}{
		{"all present", complete, nil},
		{"field dropped", strings.Replace(complete, "`ttl`", "", 1), []string{"ttl"}},
		{"path dropped", strings.Replace(complete, "`navercommerce/roles` ", "", 1), []string{"navercommerce/roles"}},
		{"name present but not in code font", strings.Replace(complete, "`account_id`", "account_id", 1), []string{"account_id"}},
		{"empty", "", wantNames},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := missingNames(wantNames, tt.korean); !slices.Equal(got, tt.wantMissing) {
				t.Errorf("missingNames = %q, want %q", got, tt.wantMissing)
			}
		})
	}
}

// The real READMEs: deleting any one name from the Korean text must make the check fail.
func TestReadmeCheckCatchesEachDroppedName(t *testing.T) {
	english := readFile(t, englishReadme)
	korean := readFile(t, koreanReadme)
	names := apiNames(english)
	if missing := missingNames(names, korean); len(missing) > 0 {
		t.Skipf("the Korean README already lacks %v (reported by TestReadmeKoreanCoversEveryAPIName)", missing)
	}
	for _, name := range names {
		cut := strings.ReplaceAll(korean, "`"+name+"`", "")
		if got := missingNames(names, cut); !slices.Contains(got, name) {
			t.Errorf("with every `%s` removed from %s, the check reported %q", name, koreanReadme, got)
		}
	}
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatalf("reading %s: %v", name, err)
	}
	return string(b)
}

// apiNames returns, in order and without repeats, the code-font names in README's "## API"
// section: the paths in its "### " headings and the names in the first column of its tables.
// Fenced code blocks are skipped.
func apiNames(readme string) []string {
	var names []string
	add := func(line string) {
		for _, n := range codeSpans(line) {
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	inAPI, inFence := false, false
	for line := range strings.Lines(readme) {
		line = strings.TrimRight(line, "\r\n")
		if strings.HasPrefix(line, "```") {
			inFence = !inFence
			continue
		}
		if inFence {
			continue
		}
		if strings.HasPrefix(line, "## ") {
			inAPI = strings.TrimSpace(line) == "## API"
			continue
		}
		if !inAPI {
			continue
		}
		switch {
		case strings.HasPrefix(line, "### "):
			add(line)
		case strings.HasPrefix(line, "|"):
			add(firstCell(line))
		}
	}
	return names
}

// firstCell returns the first cell of a markdown table row; "\|" does not end a cell.
func firstCell(row string) string {
	row = strings.TrimPrefix(row, "|")
	for i := 0; i < len(row); i++ {
		switch row[i] {
		case '\\':
			i++
		case '|':
			return row[:i]
		}
	}
	return row
}

// codeSpans returns the text between pairs of backticks.
func codeSpans(s string) []string {
	var spans []string
	parts := strings.Split(s, "`")
	for i := 1; i < len(parts)-1; i += 2 {
		if span := strings.TrimSpace(parts[i]); span != "" {
			spans = append(spans, span)
		}
	}
	return spans
}

// missingNames returns the names that do not appear in code font in text.
func missingNames(names []string, text string) []string {
	var missing []string
	for _, n := range names {
		if !strings.Contains(text, "`"+n+"`") {
			missing = append(missing, n)
		}
	}
	return missing
}

// The Operations recipes are scripts the acceptance tests run; the READMEs show them as
// they are: a fenced block right after an "<!-- include: path -->" line must hold exactly
// the file at path, and every script in examples/operations/ must be shown in each README.
func TestReadmeRecipesAreTheScripts(t *testing.T) {
	scripts, err := filepath.Glob(filepath.Join("examples", "operations", "*.sh"))
	if err != nil || len(scripts) == 0 {
		t.Fatalf("no scripts in examples/operations/ (%v)", err)
	}
	for _, readme := range []string{englishReadme, koreanReadme} {
		includes, problems := readmeIncludes(readFile(t, readme))
		for _, p := range problems {
			t.Errorf("%s: %s", readme, p)
		}
		for path, shown := range includes {
			if want := readFile(t, path); shown != want {
				t.Errorf("%s shows %s, but not as the file is: update the block from the file", readme, path)
			}
		}
		for _, script := range scripts {
			if _, ok := includes[filepath.ToSlash(script)]; !ok {
				t.Errorf("%s does not show %s (an <!-- include: %s --> line and its block)", readme, script, filepath.ToSlash(script))
			}
		}
	}
}

func TestReadmeIncludesParser(t *testing.T) {
	const script = "#!/usr/bin/env bash\nset -eu\necho hi\n"
	tests := []struct {
		name         string
		readme       string
		want         map[string]string
		wantProblems int
	}{
		{"one block", "text\n<!-- include: a.sh -->\n```bash\n" + script + "```\nmore\n", map[string]string{"a.sh": script}, 0},
		{"two blocks", "<!-- include: a.sh -->\n```bash\nA\n```\n\n<!-- include: b.sh -->\n```bash\nB\n```\n", map[string]string{"a.sh": "A\n", "b.sh": "B\n"}, 0},
		{"marker without a block", "<!-- include: a.sh -->\ntext\n", map[string]string{}, 1},
		{"unterminated block", "<!-- include: a.sh -->\n```bash\nA\n", map[string]string{}, 1},
		{"no markers", "```bash\nA\n```\n", map[string]string{}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, problems := readmeIncludes(tt.readme)
			if !maps.Equal(got, tt.want) || len(problems) != tt.wantProblems {
				t.Errorf("readmeIncludes = %q, problems %q; want %q and %d problems", got, problems, tt.want, tt.wantProblems)
			}
		})
	}
}

// readmeIncludes returns, by path, the text of the fenced block that follows each
// "<!-- include: path -->" line, and what is wrong with markers that have no such block.
func readmeIncludes(readme string) (map[string]string, []string) {
	const marker, end = "<!-- include: ", " -->"
	includes := map[string]string{}
	var problems []string
	lines := strings.SplitAfter(readme, "\n")
	for i := 0; i < len(lines); i++ {
		line := strings.TrimRight(lines[i], "\r\n")
		if !strings.HasPrefix(line, marker) || !strings.HasSuffix(line, end) {
			continue
		}
		path := strings.TrimSuffix(strings.TrimPrefix(line, marker), end)
		if i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "```") {
			problems = append(problems, fmt.Sprintf("%q is not followed by a fenced block", line))
			continue
		}
		var body strings.Builder
		closed := false
		for j := i + 2; j < len(lines); j++ {
			if strings.TrimRight(lines[j], "\r\n") == "```" {
				closed, i = true, j
				break
			}
			body.WriteString(lines[j])
		}
		if !closed {
			problems = append(problems, fmt.Sprintf("the block after %q never ends", line))
			break
		}
		includes[path] = body.String()
	}
	return includes, problems
}

// snippetReaders are the README files whose code blocks users copy.
var snippetReaders = []string{englishReadme, koreanReadme, "examples/python/README.md", "examples/node/README.md"}

// codeBlock is a fenced code block of a markdown file.
type codeBlock struct {
	file, lang, code string
	line             int
}

func fencedBlocks(file, text string) []codeBlock {
	var blocks []codeBlock
	var cur *codeBlock
	n := 0
	for line := range strings.Lines(text) {
		n++
		trimmed := strings.TrimSpace(line)
		switch {
		case cur == nil && strings.HasPrefix(trimmed, "```"):
			cur = &codeBlock{file: file, lang: strings.TrimPrefix(trimmed, "```"), line: n}
		case cur != nil && trimmed == "```":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.code += line
		}
	}
	return blocks
}

// withoutComments drops what follows # (Python) or // (JavaScript) on each line; crude, but
// enough to tell code that reads lease_duration from a comment that mentions it.
func withoutComments(lang, code string) string {
	marker := "#"
	if lang == "javascript" {
		marker = "//"
	}
	var b strings.Builder
	for line := range strings.Lines(code) {
		if i := strings.Index(line, marker); i >= 0 {
			line = line[:i] + "\n"
		}
		b.WriteString(line)
	}
	return b.String()
}

// Every README snippet that decides when to read again from lease_duration falls back to
// expires_in when the role is lease-free (lease_duration 0): otherwise it re-reads in a hot
// loop. The snippets run as written against a fake Vault, leased and lease-free, and must
// compute read_again_in (Python) or readAgainIn (JavaScript) as 90% of the token's life.
// Python needs requests (Debian's python3-requests, which python3-hvac brings:
// scripts/install-python-hvac.sh; `make unit-test` installs it) and Node.js 18 or later.
func TestReadmeSnippetsReadAgainByExpiresInWithoutALease(t *testing.T) {
	var snippets []codeBlock
	for _, file := range snippetReaders {
		for _, b := range fencedBlocks(file, readFile(t, file)) {
			if (b.lang == "python" || b.lang == "javascript") && strings.Contains(withoutComments(b.lang, b.code), "lease_duration") {
				snippets = append(snippets, b)
			}
		}
	}
	langs := map[string]bool{}
	for _, s := range snippets {
		langs[s.lang] = true
	}
	if !langs["python"] || !langs["javascript"] {
		t.Fatalf("found snippets in %v only (%d): has the README changed its code blocks?", langs, len(snippets))
	}

	vault := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Vault-Token") != "test-token" {
			http.Error(w, `{"errors":["permission denied"]}`, http.StatusForbidden)
			return
		}
		var body string
		switch r.URL.Path {
		case "/v1/navercommerce/token/my-store": // leased: the lease is the token's life
			body = `{"lease_id":"navercommerce/token/my-store/abc","renewable":false,"lease_duration":2000,` +
				`"data":{"access_token":"tok","token_type":"Bearer","expires_in":2000,"type":"SELLER","account_id":"ncp_1"}}`
		case "/v1/navercommerce/token/lease-free":
			body = `{"lease_id":"","renewable":false,"lease_duration":0,` +
				`"data":{"access_token":"tok","token_type":"Bearer","expires_in":1000,"type":"SELLER","account_id":"ncp_1"}}`
		default:
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, body)
	}))
	t.Cleanup(vault.Close)

	python := os.Getenv("PYTHON")
	if python == "" {
		python = "/usr/bin/python3"
	}
	for _, s := range snippets {
		for _, tt := range []struct {
			role string
			want float64
		}{{"my-store", 1800}, {"lease-free", 900}} {
			name := fmt.Sprintf("%s:%d %s %s", s.file, s.line, s.lang, tt.role)
			code := strings.ReplaceAll(s.code, "navercommerce/token/my-store", "navercommerce/token/"+tt.role)
			var cmd *exec.Cmd
			switch s.lang {
			case "python":
				if exec.Command(python, "-c", "import requests").Run() != nil {
					t.Skipf("%s cannot import requests: run scripts/install-python-hvac.sh (make unit-test does)", python)
				}
				cmd = exec.Command(python, "-c", "import os\nimport requests\n"+code+"\nprint(read_again_in)\n")
			case "javascript":
				node, err := exec.LookPath("node")
				if err != nil {
					t.Skip("node is not installed")
				}
				cmd = exec.Command(node, "--input-type=module", "-e", code+"\nconsole.log(readAgainIn);\n")
			}
			cmd.Env = append(os.Environ(), "VAULT_ADDR="+vault.URL, "VAULT_TOKEN=test-token")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Errorf("%s: %v\n%s", name, err, out)
				continue
			}
			got, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
			if err != nil || got != tt.want {
				t.Errorf("%s: reads again in %q, want %v (90%% of the lease, or of expires_in without one)", name, out, tt.want)
			}
		}
	}
}
