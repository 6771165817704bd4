package sim

import "encoding/binary"

// fragmentLen is the shortest part of a signature the no-secret invariant looks for.
const fragmentLen = 12

// fragmentIndex finds, in any text, a fragmentLen-character part of a signature sent. It
// keeps each signature's 8-character grams at offsets divisible by 5 (every 12-character
// window of a signature holds one) and confirms a gram found in the text by extending the
// match on both sides: a fifth of the entries of indexing every window, which a long run
// adds millions of.
type fragmentIndex map[uint64][]gramAt

type gramAt struct {
	sig string
	off int
}

const (
	gramLen    = 8
	gramStride = fragmentLen - gramLen + 1 // a window of fragmentLen starting anywhere holds a whole gram
)

func gram(s string) uint64 { return binary.LittleEndian.Uint64([]byte(s[:gramLen])) }

func (f fragmentIndex) add(sig string) {
	if len(sig) < fragmentLen {
		return
	}
	for off := 0; off+gramLen <= len(sig); off += gramStride {
		g := gram(sig[off:])
		f[g] = append(f[g], gramAt{sig, off})
	}
}

// in reports whether text holds fragmentLen characters in a row of a signature.
func (f fragmentIndex) in(text string) bool {
	for k := 0; k+gramLen <= len(text); k++ {
		for _, at := range f[gram(text[k:])] {
			if text[k:k+gramLen] != at.sig[at.off:at.off+gramLen] {
				continue
			}
			n := gramLen
			for l := 1; k-l >= 0 && at.off-l >= 0 && text[k-l] == at.sig[at.off-l]; l++ {
				n++
			}
			for r := gramLen; k+r < len(text) && at.off+r < len(at.sig) && text[k+r] == at.sig[at.off+r]; r++ {
				n++
			}
			if n >= fragmentLen {
				return true
			}
		}
	}
	return false
}
