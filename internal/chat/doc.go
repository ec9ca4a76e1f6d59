// Package chat is Natter's domain: the identifiers, entities, errors and
// backend contracts that every other package speaks in.
//
// It imports only the standard library. Backends (Store, Bus) are defined
// here and implemented by adapter packages (sqlite, membus, ...); use-cases
// live in package core, which is the only place that checks permissions.
// Identifiers are typed so that a conversation id cannot be passed where a
// user id is expected. Every error a backend returns that a user can cause is
// a *Error with a stable Code; anything else is an internal failure.
package chat
