package navercommerce

import (
	"os"
	"slices"
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
