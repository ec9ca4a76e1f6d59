// Package natsbus is chat.Bus and chat.Presence on NATS, for cluster mode:
// events travel between nodes over core NATS, and presence lives in
// JetStream key-value buckets whose keys expire by themselves when the node
// that wrote them dies.
//
// Invariants: every event is published once, on one subject, by the node
// where it happened; each subscription delivers from one goroutine, in the
// order its connection received the events, and never makes NATS wait (a
// subscriber that falls behind loses events, which are counted, logged and
// reported to Options.OnLoss, never silently); a presence key exists only
// only while the node that wrote it refreshes it (plus TTL); every node
// folds the same key-value history into per-user status, so nodes agree
// once a change has reached them.
//
// # Subjects
//
// An event with a conversation goes to <prefix>.conv.<conversation id>; an
// event without one (session_revoked) goes to <prefix>.user.<user id of
// Users[0]>. The prefix is "natter" unless Options.Prefix says otherwise.
// The payload is the JSON encoding of chat.Event with Go field names, so
// every node of a cluster must run a build whose chat.Event encodes the
// same way (a rolling upgrade that renames a field needs two steps).
//
// Each node subscribes once, to <prefix>.>, and its hub drops the events
// that no local connection needs (one map lookup each). Every node thus
// receives every event of the cluster: inbound traffic per node is the
// cluster's whole event rate, which is fine while that rate times the
// number of nodes stays well within what the NATS server can send (a
// single server delivers millions of small messages per second; a handful
// of nodes with tens of thousands of events per second is comfortable).
// The scaling path, when most events have no recipient on most nodes, is
// interest-based subscriptions: the hub already knows when a conversation
// gains its first and loses its last local member, so the node subscribes
// to <prefix>.conv.<id> for exactly those conversations and to
// <prefix>.user.<id> for its connected users, and exports the count as a
// gauge. A user in thousands of conversations then costs thousands of
// subscriptions once per node (not per device; the NATS subject tree holds
// millions), and a 100,000-member conversation with a few thousand members
// online costs one publish and at most one delivery per node. The subjects
// above already allow this; chat.Bus would gain an interest call.
//
// # Delivery
//
// Core NATS is at-most-once across the network. On a healthy connection
// nothing is lost and events published by one node reach each subscriber
// in publish order (NATS keeps the order of one connection's messages).
// Events are lost when a subscriber's connection is down (those published
// meanwhile never reach it), when the NATS server cuts a connection that
// cannot keep up, or when a subscription's queue overflows (NATS drops the
// newest). Each case is counted in Stats and reported to Options.OnLoss so
// the node can tell its clients to sync; the Store stays the system of
// record and clients catch up from their cursors. A node whose connection
// came back also publishes its id on <prefix>.control.lost, since what it
// published while away was dropped or is sent late, and every other node
// treats that as a loss of its own. Publishing during a
// reconnect is buffered by nats.go (its ReconnectBufSize) and sent late.
//
// # Presence
//
// Presence uses two buckets. In <bucket> (TTL = PresenceOptions.TTL, one
// value per key) each node keeps one key per locally connected user,
// presence.<user id>.<node id>, whose value is the user's status on that
// node ("online" if any local connection is online, else "away"); the node
// re-puts its keys every Refresh and deletes a key when the user's last
// local connection closes. A node that dies stops refreshing, so its keys
// age out after TTL. In <bucket>_lastseen (no TTL) lastseen.<user id> holds
// when the user last stopped being online.
//
// Every node watches <bucket> and folds the keys into per-user status with
// the same Grace and Debounce rules as the in-process implementation. Keys
// that age out are noticed two ways: servers since 2.11 write a marker when
// MaxAge removes a key (used when the server's JetStream API level says it
// can), and every node also expires a key itself when it has not seen a
// refresh for TTL. The second way is what works on older servers (Debian
// ships 2.9), which remove expired keys silently and have no per-key TTL;
// one TTL for the whole bucket with periodic refresh needs neither.
//
// One key per user and node, rather than per connection, keeps refresh
// traffic proportional to connected users; it still costs every node one
// message per connected user per Refresh. Beyond some hundreds of
// thousands of connected users, the next step is a per-node heartbeat key
// with TTL and per-user keys without refresh, which other nodes purge when
// a node's heartbeat expires.
package natsbus
