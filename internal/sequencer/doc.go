// Package sequencer puts the message events a node receives from the bus
// back into seq order per conversation, filling gaps from the store, before
// the hub hands them to local connections.
//
// In cluster mode the messages of one conversation are committed by several
// nodes, each publishing its own events, so a node can receive seq 6 (from
// node B) before seq 5 (from node A), and core NATS can lose events. A
// Sequencer sits between the bus subscription and the hub: Handle takes
// every event the subscription delivers and calls the hub's handler with
// them in the order described below.
//
// Invariants, per conversation, as long as its state is kept (see Forgetting):
// message events (Kind chat.EventMessage with a Message) reach the handler
// in strictly increasing seq order with no duplicate; a message that
// arrives after a higher seq is held, never delivered late; a gap is
// either filled (by the missing events arriving, or by Options.Fetch) or,
// when it cannot be, skipped on purpose, counted in Stats.Skipped and
// logged, so live delivery never stalls for longer than the hold and a few
// fetch retries. Clients recover what was skipped from their sync cursors:
// the store stays the system of record. The handler is called by one
// goroutine at a time, never concurrently with itself.
//
// # Rules
//
// A conversation's state is the seq last delivered. The first message of a
// conversation without state is delivered at once if its seq is 1; any
// other is held for Options.Hold, since a lower seq committed on another
// node may be overtaking it, and then delivery starts at the lowest seq
// that arrived (never fetched: what came before is unknown here, and the
// clients catch up from their cursors). This costs the first message of
// each conversation a node sees (after it starts, resets or forgets the
// conversation) up to Hold of latency. After that a
// message with seq <= last is a duplicate (dropped and counted); seq ==
// last+1 is delivered at once, followed by any held successors it makes
// consecutive; a higher seq is held. When the oldest gap has been waited on
// for Options.Hold, Run fetches the missing range (last+1 up to the first
// held seq - 1) with Options.Fetch, delivers the fetched messages as
// EventMessage events (Origin 0, Pos from the message), then the held ones.
// A failing fetch, or one that returns none of the missing messages, is
// retried after Hold, 2×Hold and 4×Hold; after the fourth failure the gap is
// skipped. A gap wider than chat.MaxPageSize is skipped at once instead of
// fetched (after a loss that large the clients must sync anyway), and so is
// every gap when Options.Fetch is nil.
//
// Events that are not sequenced (every other kind) are delivered at once,
// unless their conversation has held messages: then they are queued behind
// the messages held when they arrived and delivered, in arrival order, as
// soon as those have been delivered (or skipped). So an event never
// overtakes a message that arrived before it, e.g. an edit of message 6
// never reaches a client before message 6 itself. An update of a message
// that has not arrived yet while nothing is held is not delayed: the hub
// forwards it and clients treat it as an upsert.
//
// # Bounds
//
// A conversation holds at most Options.MaxHeld events (messages and queued
// events together). Reaching the bound makes its gap due for fetching at
// once; one event more skips the gap, so memory stays bounded even while a
// fetch hangs. At most Options.MaxConvs conversations have state; beyond
// that the least recently used one is forgotten (its held events are
// delivered first). At most four fetches run at a time, each bounded by a
// ten-second timeout.
//
// # Forgetting
//
// Reset forgets every conversation after delivering what was held (the
// caller resets after the bus reported a loss, when clients are told to
// sync). After a Reset or an eviction the next message of a conversation is
// delivered as is, so order holds across them only as far as the bus
// provides it.
//
// Handle does no I/O and starts no timer: in-order messages cost one map
// lookup under a mutex. Held events are released by Run, which must be
// running for gaps to be fetched or skipped; a Sequencer whose Run has
// returned still delivers in-order events but holds gaps until they fill.
package sequencer
