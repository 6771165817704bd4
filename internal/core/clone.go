package core

import (
	"reflect"
	"unsafe"
)

// Clone is a deep copy of the machine: everything it holds, with the sharing between its
// parts (a key's state referenced by its requests, reads and writes) kept. For the model
// checker, which explores each next event from a copy of the state before it.
func (m *Machine) Clone() *Machine {
	c := &cloner{seen: map[uintptr]reflect.Value{}}
	return c.value(reflect.ValueOf(m)).Interface().(*Machine)
}

type cloner struct {
	seen map[uintptr]reflect.Value
}

// settable is v (addressable) as a value that may be read and set although it was reached
// through unexported fields: the machine's state is all unexported.
func settable(v reflect.Value) reflect.Value {
	return reflect.NewAt(v.Type(), unsafe.Pointer(v.UnsafeAddr())).Elem()
}

// value returns a deep copy of v (readable: never reached through an unexported field of a
// value that is not addressable).
func (c *cloner) value(v reflect.Value) reflect.Value {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return reflect.Zero(v.Type())
		}
		if cp, ok := c.seen[v.Pointer()]; ok {
			return cp
		}
		cp := reflect.New(v.Type().Elem())
		c.seen[v.Pointer()] = cp
		c.into(cp.Elem(), v.Elem())
		return cp
	case reflect.Map:
		if v.IsNil() {
			return reflect.Zero(v.Type())
		}
		cp := reflect.MakeMapWithSize(v.Type(), v.Len())
		iter := v.MapRange()
		for iter.Next() {
			cp.SetMapIndex(c.value(iter.Key()), c.value(iter.Value()))
		}
		return cp
	case reflect.Slice:
		if v.IsNil() {
			return reflect.Zero(v.Type())
		}
		cp := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := 0; i < v.Len(); i++ {
			c.into(cp.Index(i), v.Index(i))
		}
		return cp
	case reflect.Interface:
		if v.IsNil() {
			return reflect.Zero(v.Type())
		}
		cp := reflect.New(v.Type()).Elem()
		cp.Set(c.value(v.Elem()))
		return cp
	case reflect.Struct, reflect.Array:
		if !v.CanAddr() {
			// A map's value: copied whole first, so that its unexported fields can be read.
			tmp := reflect.New(v.Type()).Elem()
			tmp.Set(v)
			v = tmp
		}
		cp := reflect.New(v.Type()).Elem()
		c.into(cp, v)
		return cp
	}
	return v
}

// into copies v (addressable, or readable) deeply into dst (addressable).
func (c *cloner) into(dst, v reflect.Value) {
	dst = settable(dst)
	if v.CanAddr() {
		v = settable(v)
	}
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == timeType {
			dst.Set(v)
			return
		}
		for i := 0; i < v.NumField(); i++ {
			c.into(dst.Field(i), v.Field(i))
		}
	case reflect.Array:
		for i := 0; i < v.Len(); i++ {
			c.into(dst.Index(i), v.Index(i))
		}
	default:
		dst.Set(c.value(v))
	}
}
