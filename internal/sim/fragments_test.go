package sim

import (
	"strings"
	"testing"
)

func TestFragmentIndexFindsEveryWindow(t *testing.T) {
	const sig = "JDJhJDA0JEFCQ0RFRkdISUpLTE1OT1BRUlNUVS5vZ2J5d2Z4c2h6bGRqa3Jw"
	f := fragmentIndex{}
	f.add(sig)
	f.add("short")
	for i := 0; i+fragmentLen <= len(sig); i++ {
		if w := sig[i : i+fragmentLen]; !f.in("error: " + w + " at gateway") {
			t.Errorf("window %d (%q) not found", i, w)
		}
	}
	for _, text := range []string{
		"",
		"nothing here at all, just words",
		sig[3:14],                     // 11 characters
		sig[0:8] + "XXXX" + sig[8:16], // aligned grams, broken in the middle
		sig[20:31] + "?" + sig[31:42], // two 11-character runs
		strings.Repeat(sig[4:12], 3),  // the same gram, repeated, never 12 in a row of the signature
	} {
		if f.in(text) {
			t.Errorf("%q: found a fragment that is not there", text)
		}
	}
}
