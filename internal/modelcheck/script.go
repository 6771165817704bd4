package modelcheck

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// A script is a data-driven test of the core, as etcd's raft keeps them: blocks of events,
// one per line (the names Choices gives), each followed by "----" and what the world's trace
// says came of them. Lines starting with # are comments. A first line "world <name>" picks
// one of Worlds (default: the whole alphabet). A line "check" in a block appends the world's
// summary (what is cached, what is under way) to its output.
//
// RunScript runs the script at path and returns what differs from it, or, with rewrite,
// writes the file with the outputs as they now are.
func RunScript(path string, rewrite bool) (diffs []string, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	type block struct {
		lead     []string // comments and blank lines before the events
		events   []string
		expected string
	}
	var blocks []block
	var cur block
	inOutput := false
	var out strings.Builder
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case inOutput && line == "":
			cur.expected = out.String()
			blocks = append(blocks, cur)
			cur, inOutput = block{}, false
			out.Reset()
		case inOutput:
			out.WriteString(line + "\n")
		case line == "----":
			inOutput = true
		case line == "" || strings.HasPrefix(line, "#"):
			cur.lead = append(cur.lead, line)
		default:
			cur.events = append(cur.events, line)
		}
	}
	if inOutput {
		cur.expected = out.String()
		blocks = append(blocks, cur)
	} else if len(cur.events) > 0 || len(cur.lead) > 0 {
		blocks = append(blocks, cur)
	}

	p := DefaultParams
	if len(blocks) > 0 && len(blocks[0].events) > 0 && strings.HasPrefix(blocks[0].events[0], "world ") {
		name := strings.TrimPrefix(blocks[0].events[0], "world ")
		found := false
		for _, wp := range Worlds {
			if wp.Name == name {
				p, found = wp, true
			}
		}
		if !found {
			return nil, fmt.Errorf("%s: no world %q", path, name)
		}
		blocks[0].events = blocks[0].events[1:]
	}
	w := NewWorld(p)
	var rewritten strings.Builder
	if p.Name != DefaultParams.Name {
		rewritten.WriteString("world " + p.Name + "\n")
	}
	for _, b := range blocks {
		for _, l := range b.lead {
			rewritten.WriteString(l + "\n")
		}
		if len(b.events) == 0 {
			continue
		}
		w.Trace, w.Violations = nil, nil
		var got strings.Builder
		for _, ev := range b.events {
			if ev == "check" {
				got.WriteString(w.Summary())
				continue
			}
			if !w.Do(ev) {
				fmt.Fprintf(&got, "error: %q cannot happen now; what can: %s\n", ev, w.ChoiceNames())
				break
			}
		}
		for _, l := range w.Trace {
			if !strings.Contains(l, " > ") {
				got.WriteString(l + "\n")
			}
		}
		for _, v := range w.Violations {
			got.WriteString("VIOLATION " + v + "\n")
		}
		for i, p := range w.pending {
			fmt.Fprintf(&got, "pending %d: %s\n", i, describePending(p))
		}
		output := got.String()
		if output != "" && !strings.HasSuffix(output, "\n") {
			output += "\n"
		}
		if output != b.expected {
			diffs = append(diffs, fmt.Sprintf("%s, after %s:\n--- want\n%s--- got\n%s", path, strings.Join(b.events, "; "), b.expected, output))
		}
		rewritten.WriteString(strings.Join(b.events, "\n") + "\n----\n" + output + "\n")
	}
	if rewrite {
		return nil, os.WriteFile(path, []byte(strings.TrimRight(rewritten.String(), "\n")+"\n"), 0o644)
	}
	return diffs, nil
}
