package chat

import (
	"context"
	"time"
)

// Status is a user's presence.
type Status string

const (
	StatusOnline  Status = "online"  // at least one device connected and active
	StatusAway    Status = "away"    // connected, but every device is away (said so, or missed heartbeats)
	StatusOffline Status = "offline" // no device connected
)

// PresenceState is one user's presence. LastSeen is when the user was
// last online (for offline and away users; the zero time if never seen).
type PresenceState struct {
	User     UserID
	Status   Status
	LastSeen time.Time
}

// Presence tracks the presence of users across every node, from the
// connections the nodes report. Implementations: membus (one node) and,
// later, natsbus. Consistency is eventual: a change may take a moment to
// be seen everywhere.
//
// A user is online while any of their connections is online, away while
// they have connections and all are away, offline otherwise. Changes are
// debounced: a user whose last connection closes becomes offline only if
// no connection reappears within the implementation's grace period, so a
// flapping connection does not produce a storm of changes.
type Presence interface {
	// Set records that connection conn of user has status (online or
	// away); the first Set of a connection connects it.
	Set(ctx context.Context, user UserID, conn int64, status Status) error
	// Remove records that connection conn of user has closed.
	Remove(ctx context.Context, user UserID, conn int64) error
	// Get returns the presence of users, in the order asked; unknown users
	// are offline with a zero LastSeen.
	Get(ctx context.Context, users []UserID) ([]PresenceState, error)
	// Watch calls handle, from one goroutine, with every change of a
	// user's Status after debouncing, until ctx is done or cancel is
	// called; cancel waits for handle to return.
	Watch(ctx context.Context, handle func(PresenceState)) (cancel func(), err error)
}
