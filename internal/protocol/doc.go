// Package protocol is Natter's public wire format: the JSON bodies of the
// REST API, the WebSocket frames, and the conversion between them and the
// domain types of package chat.
//
// Everything a client sees is defined here and documented in
// docs/protocol.md; changing a JSON name is a breaking change. All ids are
// decimal strings (JavaScript numbers cannot hold 64-bit ids); times are
// RFC 3339 in UTC with millisecond precision (trailing zeros omitted). Hot-path frames (message,
// ack) are encoded by hand with Append functions so that a fan-out encodes
// a message once, without reflection; they produce exactly what
// encoding/json would decode into the same types.
package protocol
