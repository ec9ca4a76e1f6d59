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
// event without one (session_revoked, settings) goes to <prefix>.user.<user
// id of Users[0]>. The prefix is "natter" unless Options.Prefix says otherwise.
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
// cannot keep up, when a subscription's queue overflows (NATS drops the
// newest), or when a publisher's connection breaks (what it had written
// to the dead socket is gone; what nats.go buffers meanwhile, up to its
// ReconnectBufSize, is sent late, in order). Each case is counted in
// Stats and reported to Options.OnLoss so the node can tell its clients
// to sync; the Store stays the system of record and clients catch up from
// their cursors.
//
// To see the last case, every message a Bus publishes carries the Bus's
// random id and its number in the Bus's sequence (the fields Pub and
// PubSeq next to the event's own; nodes that do not know them ignore
// them). A subscription that receives a number above the next one
// expected reports the gap before it hands the message on; an event that
// nats.go refused (its reconnect buffer full) still uses up its number.
// This needs subscriptions to <prefix>.> (all of a publisher's messages);
// interest-based subscriptions would need a sequence per subject. A node
// whose connection came back also publishes its id on
// <prefix>.control.lost; the others treat that as a loss of their own
// only if that node's messages carry no sequence (an older release):
// otherwise its losses show as gaps, and its late events are no loss.
//
// # Watermarks
//
// A node publishes watermarks (PublishWatermark) on
// <prefix>.control.watermark, on the connection of its events: "before
// this, I published the event of every change I committed at or below
// Pos". They reach Options.OnWatermark in order with the events, and a
// gap before one is reported first, so a subscription that has handed on
// a node's watermark has handed on all of that node's events below it,
// or reported their loss. Watermarks are never buffered across a
// reconnect. NodeWatch follows the node id leases, so that a node can
// tell a node that is silent (its lease lives) from one that is gone.
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
