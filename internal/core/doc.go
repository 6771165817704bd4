// Package core decides, for one mount of the secrets engine, when Naver is asked for a
// token and what every read, drop and periodic run does about it. It is a deterministic
// state machine with no I/O: no clock, no storage, no network, no goroutines, no logger.
//
// The plugin (the root package) turns what happens into events and hands them to
// Machine.Step: a read arrived, Naver answered, a storage write finished or failed, a role
// or the config changed, the periodic run came, the plugin started. Step changes the
// machine's state and queues effects, which Machine.Ready hands back for the plugin to
// carry out: serve this token with this warning, fail this read, send one request now,
// store this entry, load that one, delete that one. The plugin reports what came of each
// effect as another event. Every event carries the time it happened at; the machine never
// reads a clock.
//
// So concurrency is explicit: a request in flight, a storage write in flight, a load under
// way, a drop waiting for Naver's verdict are states of the machine, and a race between
// two entry points is one more order of events. The model checker (internal/modelcheck)
// explores every order of events of a small world up to a depth and checks the README's
// promises after every step.
//
// The shape follows etcd's raft package: Step is the only way in, Ready the only way out.
package core
