//go:build acceptance

package acceptance

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// readmeSnippet is a fenced code block of a README that reads a token from Vault.
type readmeSnippet struct {
	file, lang, code string
	line             int
}

// readmeTokenSnippets returns the Python and JavaScript blocks of the READMEs users copy from
// that read navercommerce/token/my-store, directly or through the example modules.
func readmeTokenSnippets(t *testing.T) []readmeSnippet {
	t.Helper()
	root := repoRoot(t)
	var out []readmeSnippet
	for _, file := range []string{"README.md", "README.ko.md", "examples/python/README.md", "examples/node/README.md"} {
		f, err := os.Open(filepath.Join(root, file))
		if err != nil {
			t.Fatal(err)
		}
		var cur *readmeSnippet
		sc := bufio.NewScanner(f)
		for n := 1; sc.Scan(); n++ {
			line := sc.Text()
			trimmed := strings.TrimSpace(line)
			switch {
			case cur == nil && strings.HasPrefix(trimmed, "```"):
				cur = &readmeSnippet{file: file, lang: strings.TrimPrefix(trimmed, "```"), line: n}
			case cur != nil && trimmed == "```":
				if (cur.lang == "python" || cur.lang == "javascript") &&
					(strings.Contains(cur.code, "navercommerce/token/my-store") || strings.Contains(cur.code, `NaverToken("my-store")`) || strings.Contains(cur.code, `NaverToken('my-store')`)) {
					out = append(out, *cur)
				}
				cur = nil
			case cur != nil:
				cur.code += line + "\n"
			}
		}
		f.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestReadmeSnippetsAgainstVault runs every README snippet that reads a token, as written,
// against a real Vault and the emulator (Naver's API address replaced by the emulator's):
// with a Vault token whose policy allows the path it succeeds; with a token whose policy
// does not, it fails saying Vault answered 403 and that the Vault token may not read the
// path — never with a KeyError or a TypeError on the missing data.
func TestReadmeSnippetsAgainstVault(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	python := runScript(t, root, "scripts/install-python-hvac.sh")
	nodeDir := runScript(t, root, "scripts/install-node-vault.sh")
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not on PATH: %v", err)
	}
	snippets := readmeTokenSnippets(t)
	count := map[string]int{}
	for _, s := range snippets {
		count[s.file+" "+s.lang]++
	}
	// Guards against a test that passes because it found nothing (a renamed file or block).
	for _, want := range []string{"README.md python", "README.md javascript", "README.ko.md python", "README.ko.md javascript", "examples/python/README.md python", "examples/node/README.md javascript"} {
		if count[want] == 0 {
			t.Errorf("no %s snippet reads navercommerce/token/my-store: has the README changed?", want)
		}
	}

	em := startEmulator(t, emulatorOpts{})
	v := startDevVaultWithEngine(t)
	v.configure(t, "navercommerce", em)
	v.write(t, "navercommerce/roles/my-store", "type=SELLER", "account_id=ncp_readme")
	allowed := appToken(t, v, "readme-app", "navercommerce/token/my-store")
	other := appToken(t, v, "readme-other", "navercommerce/token/other")

	for _, s := range snippets {
		t.Run(fmt.Sprintf("%s:%d %s", s.file, s.line, s.lang), func(t *testing.T) {
			code := strings.ReplaceAll(s.code, "https://api.commerce.naver.com/external", em.URL)
			// Not t.TempDir(): a stack trace names the directory, and the test's long name
			// would look like a token to the check below.
			dir, err := os.MkdirTemp("", "snippet-")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(dir) })
			var cmd *exec.Cmd
			switch s.lang {
			case "python":
				cmd = exec.Command(python, "-c", code)
			case "javascript":
				// ES module for top-level await; require for the example module.
				prelude := fmt.Sprintf("import { createRequire } from 'node:module';\nconst require = createRequire(%q);\n", nodeDir+"/")
				cmd = exec.Command(node, "--input-type=module", "-e", prelude+code)
			}
			run := func(vaultToken string) (string, error) {
				c := exec.Command(cmd.Path, cmd.Args[1:]...)
				c.Dir = dir
				c.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "VAULT_ADDR=" + v.addr, "VAULT_TOKEN=" + vaultToken,
					"PYTHONPATH=" + filepath.Join(root, "examples", "python"), "PYTHONDONTWRITEBYTECODE=1"}
				out, err := c.CombinedOutput()
				if m := accessTokenLike.FindString(string(out)); m != "" {
					t.Errorf("the snippet printed something token-like (%d characters)", len(m))
				}
				return string(out), err
			}

			if out, err := run(allowed); err != nil {
				t.Errorf("with a token allowed to read the path: %v\n%s", err, out)
			}
			out, err := run(other)
			if err == nil {
				t.Fatalf("with a token not allowed to read the path, the snippet succeeded:\n%s", out)
			}
			last := lastLine(out)
			for _, bad := range []string{"KeyError", "TypeError", "AttributeError", "Cannot read properties"} {
				if strings.Contains(out, bad) {
					t.Errorf("on a 403 the snippet fails with %s, not a permission message:\n%s", bad, out)
				}
			}
			if !strings.Contains(out, "403") || !(strings.Contains(out, "may not read") || strings.Contains(out, "읽을 수 없습니다") || strings.Contains(out, "policy does not allow reading this path")) {
				t.Errorf("on a 403 the snippet does not say the Vault token may not read the path; it ends with %q:\n%s", last, out)
			}
		})
	}
}

// lastLine is the last non-empty line of out.
func lastLine(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return lines[len(lines)-1]
}
