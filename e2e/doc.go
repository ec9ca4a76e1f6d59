// Package e2e holds Natter's end-to-end chaos test of cluster mode: three
// real `natter serve` nodes behind HAProxy, sharing a private PostgreSQL
// and a private nats-server, with real WebSocket clients that send,
// receive, reconnect and catch up while a node is SIGKILLed, NATS is
// restarted or PostgreSQL is restarted. The package has no code of its
// own outside its tests.
//
// Invariants the test checks after each scenario, from the clients' logs
// and the history read back through the load balancer:
//
//   - lost: every acknowledged message is stored with the id and seq its
//     ack gave, and every member's client has applied every stored message
//     of its conversations;
//   - duplicated: no client_id is stored twice, and no client applies a
//     message twice outside the documented overlap of a resume (a copy
//     that arrives while or just after the client catches up);
//   - reordered: each conversation's history is gap-free 1..N, and each
//     client holds, at every seq, the message the history holds there.
//
// Live reorders (a live message whose seq is lower than one already
// received live on the same connection for the same conversation) are
// counted separately and are failures too: every node puts each
// conversation's messages from other nodes back in seq order (package
// sequencer), so clients never see a conversation step back.
//
// Everything runs on loopback on free ports, in temporary directories, in
// process groups of its own that are killed when the test ends: the
// machine's own PostgreSQL and NATS are never touched. The test needs
// haproxy, nats-server and PostgreSQL 15 (initdb, postgres, pg_isready;
// see pgBinDir) and, when run as root, a postgres system user to run
// PostgreSQL as. Without them it is skipped, unless NATTER_TEST_E2E=1 is
// set (as in CI), which turns a missing dependency into a failure. It is
// skipped under -short.
//
// Each client's log (every send with its client_id and outcome, every
// message received with its source, seq and connection number) and every
// process's output are written under test-artifacts/e2e/<scenario>/.
package e2e
