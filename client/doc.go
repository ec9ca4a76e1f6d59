// Package client is the Go client of a Natter server: the REST API
// (accounts, sessions, conversations, history, sends) and authenticated
// real-time connections (sends with acknowledgements, sync, and the frames
// the server pushes) over a WebSocket, or over Server-Sent Events with
// posted requests where a network blocks WebSocket (see TransportSSE).
//
// A Client holds the tokens of one login and is safe for concurrent use;
// every method that does I/O takes a context first. Server refusals are
// returned as *Error, whose Code is the server's stable error code (see
// ErrorCode). A Conn matches each answer to its request by ref, so many
// requests may be in flight on one connection; pushed frames reach
// ConnOptions.OnEvent in arrival order, from one goroutine. When a
// connection ends, every waiting request fails with an error matching
// ErrClosed, and Close stops every goroutine the Conn started.
//
// The wire types are re-exported as aliases (Message, Conversation,
// ServerFrame, ...) so that programs need not import Natter's internal
// packages.
//
// Usage:
//
//	c := client.New("http://127.0.0.1:8080", client.Options{Device: "bot"})
//	if _, err := c.Login(ctx, "alice", password); err != nil {
//		return err
//	}
//	conv, err := c.CreateDirect(ctx, bobID)
//	if err != nil {
//		return err
//	}
//	conn, err := c.Connect(ctx, client.ConnOptions{
//		OnEvent: func(f client.ServerFrame) {
//			if m, _ := f.Msg(); f.Type == client.TypeMessage && m != nil {
//				fmt.Printf("%s: %s\n", m.Sender, m.Text)
//			}
//		},
//	})
//	if err != nil {
//		return err
//	}
//	defer conn.Close()
//	msg, _, err := conn.Send(ctx, conv.ID, "a-unique-client-id", "hello")
//
// A send whose outcome is unknown (timeout, dropped connection) is
// retried with the same client id: the server stores it once and answers
// the retry with the original message and duplicate set. After a
// reconnect, Conn.CatchUp fetches what was missed.
package client
