package core

import (
	"bytes"
	"encoding/binary"
	"hash/fnv"
	"math"
	"reflect"
	"sort"
	"sync"
	"time"
)

// Digest is a canonical hash of everything the machine holds: two machines with the same
// digest decide alike from then on. It walks the state by reflection (so no field can be
// forgotten) in a fixed order (maps by key, pointers at their first visit), and numbers the
// IDs it meets in that order, so the same state reached by another order of events, with
// other IDs, has the same digest. For the model checker, which deduplicates the states it
// explores.
func (m *Machine) Digest() uint64 {
	d := digesterPool.Get().(*digester)
	defer digesterPool.Put(d)
	d.reset()
	d.walk(reflect.ValueOf(m).Elem())
	h := fnv.New64a()
	h.Write(d.buf.Bytes())
	return h.Sum64()
}

var digesterPool = sync.Pool{New: func() any { return &digester{} }}

// idTypes are the types whose values are identities, not quantities.
var idTypes = map[reflect.Type]bool{
	reflect.TypeOf(ReadID(0)): true, reflect.TypeOf(ReqID(0)): true, reflect.TypeOf(DropID(0)): true,
	reflect.TypeOf(VerifyID(0)): true, reflect.TypeOf(WriteID(0)): true,
}

// digestSkip are fields that are not state: the counter IDs are drawn from, the effects
// not yet handed out (empty between steps), and caches (of keys in use, of whether a role
// names a key and the roles' generation it is valid for, of the minute the counts were
// last pruned in): each equals what it caches, so states that differ in them decide alike.
var digestSkip = map[string]bool{"nextID": true, "out": true, "useMemo": true,
	"named": true, "namedGen": true, "gen": true, "pruned": true, "prunedAt": true}

var timeType = reflect.TypeOf(time.Time{})

// fieldsOf lists the fields of a struct type the digest walks (cached per type).
var fieldsCache sync.Map // reflect.Type → []int

func fieldsOf(t reflect.Type) []int {
	if v, ok := fieldsCache.Load(t); ok {
		return v.([]int)
	}
	var out []int
	for i := 0; i < t.NumField(); i++ {
		if !digestSkip[t.Field(i).Name] {
			out = append(out, i)
		}
	}
	fieldsCache.Store(t, out)
	return out
}

type digester struct {
	buf  bytes.Buffer
	ids  map[uint64]uint64 // ID (with its type's tag) → its number in order of meeting
	seen map[uintptr]uint64
}

func (d *digester) reset() {
	d.buf.Reset()
	d.ids = map[uint64]uint64{}
	d.seen = map[uintptr]uint64{}
}

func (d *digester) u64(v uint64) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	d.buf.Write(b[:])
}

func (d *digester) id(t reflect.Type, v uint64) {
	key := v<<3 | uint64(idTag(t))
	n, ok := d.ids[key]
	if !ok {
		n = uint64(len(d.ids) + 1)
		d.ids[key] = n
	}
	d.u64(n)
}

func idTag(t reflect.Type) int {
	switch t {
	case reflect.TypeOf(ReadID(0)):
		return 1
	case reflect.TypeOf(ReqID(0)):
		return 2
	case reflect.TypeOf(DropID(0)):
		return 3
	case reflect.TypeOf(VerifyID(0)):
		return 4
	}
	return 5
}

func (d *digester) walk(v reflect.Value) {
	t := v.Type()
	if idTypes[t] {
		d.id(t, v.Uint())
		return
	}
	if t == timeType {
		d.u64(uint64(unixNanoOf(v)))
		return
	}
	switch v.Kind() {
	case reflect.Bool:
		if v.Bool() {
			d.buf.WriteByte(1)
		} else {
			d.buf.WriteByte(0)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		d.u64(uint64(v.Int()))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		d.u64(v.Uint())
	case reflect.Float32, reflect.Float64:
		d.u64(math.Float64bits(v.Float()))
	case reflect.String:
		d.u64(uint64(v.Len()))
		d.buf.WriteString(v.String())
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.IsNil() {
			d.u64(math.MaxUint64)
			return
		}
		d.u64(uint64(v.Len()))
		for i := 0; i < v.Len(); i++ {
			d.walk(v.Index(i))
		}
	case reflect.Map:
		d.walkMap(v)
	case reflect.Pointer:
		if v.IsNil() {
			d.u64(math.MaxUint64)
			return
		}
		if i, ok := d.seen[v.Pointer()]; ok {
			d.u64(1<<63 | i)
			return
		}
		d.seen[v.Pointer()] = uint64(len(d.seen) + 1)
		d.u64(0)
		d.walk(v.Elem())
	case reflect.Interface:
		if v.IsNil() {
			d.u64(math.MaxUint64)
			return
		}
		e := v.Elem()
		d.buf.WriteString(e.Type().String())
		d.walk(e)
	case reflect.Struct:
		for _, i := range fieldsOf(t) {
			d.walk(v.Field(i))
		}
	case reflect.Func, reflect.Chan, reflect.UnsafePointer:
		// Not state.
	}
}

// walkMap walks a map's entries in the order of their keys: IDs by value (they grow with
// time, so the order is that of their making), others by their encoding.
func (d *digester) walkMap(v reflect.Value) {
	if v.IsNil() {
		d.u64(math.MaxUint64)
		return
	}
	keys := v.MapKeys()
	kt := v.Type().Key()
	if idTypes[kt] {
		sort.Slice(keys, func(i, j int) bool { return keys[i].Uint() < keys[j].Uint() })
	} else {
		enc := make([]string, len(keys))
		for i, k := range keys {
			sub := digester{ids: d.ids, seen: map[uintptr]uint64{}}
			sub.walk(k)
			enc[i] = sub.buf.String()
		}
		sort.Sort(byEncoding{keys, enc})
	}
	d.u64(uint64(len(keys)))
	for _, k := range keys {
		d.walk(k)
		d.walk(v.MapIndex(k))
	}
}

type byEncoding struct {
	keys []reflect.Value
	enc  []string
}

func (b byEncoding) Len() int           { return len(b.keys) }
func (b byEncoding) Less(i, j int) bool { return b.enc[i] < b.enc[j] }
func (b byEncoding) Swap(i, j int) {
	b.keys[i], b.keys[j] = b.keys[j], b.keys[i]
	b.enc[i], b.enc[j] = b.enc[j], b.enc[i]
}

// unixNanoOf is the instant of a time.Time value read by reflection (also from an unexported
// field, which cannot be turned back into a time.Time): from its wall and ext words, with or
// without a monotonic reading, as package time lays them out. The zero time is 0.
func unixNanoOf(v reflect.Value) int64 {
	const (
		hasMonotonic   = 1 << 63
		nsecMask       = 1<<30 - 1
		wallToInternal = (1884*365 + 1884/4 - 1884/100 + 1884/400) * 86400
		internalToUnix = -(1969*365 + 1969/4 - 1969/100 + 1969/400) * 86400
	)
	wall, ext := v.Field(0).Uint(), v.Field(1).Int()
	sec := ext
	if wall&hasMonotonic != 0 {
		sec = wallToInternal + int64(wall<<1>>31)
	}
	if sec == 0 && wall&nsecMask == 0 {
		return 0
	}
	return (sec+internalToUnix)*1e9 + int64(wall&nsecMask)
}
