package core

import (
	"encoding/json"
	"math/rand"
	"reflect"
	"testing"
)

// Counts' own encoding reads back as encoding/json's does, for every shape of maps.
func TestCountsEncodeAsEncodingJSONDoes(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	randMap := func() map[int64]int {
		switch r.Intn(4) {
		case 0:
			return nil
		case 1:
			return map[int64]int{}
		}
		m := map[int64]int{}
		for i := r.Intn(70); i > 0; i-- {
			m[29_000_000+r.Int63n(100)-50] = r.Intn(1000) - 1
		}
		return m
	}
	type plain Counts // encoding/json's way: no MarshalJSON
	for i := 0; i < 2000; i++ {
		c := Counts{Minutes: randMap(), Keys: randMap(), Reserved: randMap()}
		ours, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		theirs, _ := json.Marshal(plain(c))
		var a, b map[string]any
		if err := json.Unmarshal(ours, &a); err != nil {
			t.Fatalf("%s: %v", ours, err)
		}
		if err := json.Unmarshal(theirs, &b); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("ours %s\nencoding/json %s", ours, theirs)
		}
		var back Counts
		if err := json.Unmarshal(ours, &back); err != nil || !reflect.DeepEqual(back, plainBack(theirs)) {
			t.Fatalf("read back %+v (err %v), want %+v", back, err, plainBack(theirs))
		}
	}
}

func plainBack(b []byte) Counts {
	var c Counts
	_ = json.Unmarshal(b, &c)
	return c
}
