// Package wsapi is the WebSocket endpoint GET /v1/ws: upgrade, origin and
// token checks, the per-connection read loop and frame dispatch, and the
// bounded per-connection write queue.
//
// Invariants: a connection is registered with the hub only once it is
// authenticated (Authorization header on the upgrade, or an auth frame
// within AuthTimeout for browsers); frames for a client are queued without
// blocking the caller, and a client whose queue exceeds QueueFrames is
// closed (code 4008) instead of being waited for; an ack is written only
// after the message's commit; a bad frame gets an error frame and never
// closes the connection or affects anyone else.
package wsapi
