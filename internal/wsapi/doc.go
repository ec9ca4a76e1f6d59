// Package wsapi is the real-time endpoint: the WebSocket GET /v1/ws
// (upgrade, origin and token checks, the per-connection read loop and
// frame dispatch, the bounded per-connection write queue) and its
// fallback for networks that block WebSocket, an event stream GET
// /v1/events (Server-Sent Events) with client frames posted to POST
// /v1/frames. Both transports answer frames with the same dispatcher.
//
// Invariants: a connection is registered with the hub only once it is
// authenticated (Authorization header on the upgrade, or an auth frame
// within AuthTimeout for browsers; event streams only by header); frames
// for a client are queued without blocking the caller, and a client whose
// queue exceeds QueueFrames is closed (code 4008; an event stream just
// ends) instead of being waited for; an ack is written only after the
// message's commit; a bad frame gets an error frame and never closes the
// connection or affects anyone else. An event stream opened with a cursor
// gets the sync stream replayed before any live frame, and every live
// frame delivered meanwhile after it.
package wsapi
