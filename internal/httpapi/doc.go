// Package httpapi is Natter's REST API under /v1, plus /healthz and
// /readyz: routes, middleware (recovery, limits, auth, logging, metrics)
// and the one table that maps error codes to HTTP statuses.
//
// Invariants: every route but registration, login and refresh requires a
// valid access token of a live session; handlers only translate between
// HTTP and package core, which checks permissions; every error body is
// {"error":{"code","message"}} with a stable code; request bodies are
// bounded (MaxBodyBytes) and decoded strictly; a panic in a handler
// becomes a 500 with code internal and is logged, never shown.
package httpapi
