package core_test

import (
	"flag"
	"path/filepath"
	"testing"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/internal/modelcheck"
)

var rewrite = flag.Bool("rewrite", false, "TestScripts: write the scripts' outputs as they now are")

// TestScripts runs the data-driven scripts of testdata: events in, what came of them out,
// with every invariant of the model checker checked after every event.
func TestScripts(t *testing.T) {
	paths, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(paths) == 0 {
		t.Fatal("no scripts", err)
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			diffs, err := modelcheck.RunScript(path, *rewrite)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range diffs {
				t.Error(d)
			}
		})
	}
}
