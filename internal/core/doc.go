// Package core holds Natter's use-cases: accounts, sessions, conversations,
// membership, sending and reading messages. It is the one place that
// checks permissions; transports (REST, WebSocket) call it and adapters
// (stores, buses) are called by it.
//
// Invariants: a send is acknowledged only after the transaction that holds
// it has committed; sends are committed in batches by a single appender
// goroutine per node (group commit), so a conversation's events are
// published in seq order; an event is published on the Bus only after what
// it describes is stored. Every denial of access to a conversation the
// caller is not in is reported as not_found, so that strangers cannot learn
// that it exists.
package core
