// Package chattest holds the conformance suites that every implementation of
// a chat backend contract must pass, and the few fixtures they share.
//
// Invariants. A suite states behaviour callers rely on, never an
// implementation's details: every subtest opens a fresh backend, names the
// outcome it checks, and runs in parallel with the others. Nothing here
// sleeps or reads the wall clock: times are fixed instants (At) and ids come
// from a counter (IDs), so a failure reproduces exactly. The package imports
// only chat, the standard library and go-cmp.
package chattest
