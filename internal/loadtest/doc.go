// Package loadtest is the load generator behind `natter load`: it drives a
// running Natter server through the public client package and reports
// throughput, latency percentiles and memory per connection.
//
// Every run is bounded by count and by time (Options.Duration), creates
// its own users under a random run prefix (so runs never collide), and
// refuses targets that are not loopback unless Options.AllowRemote is set,
// so that it cannot be pointed at someone else's server by accident. It
// closes every connection it opened before Run returns. Latency
// percentiles are computed from every recorded sample (nearest rank), not
// estimated.
//
// Scenarios:
//   - sends: Senders pairs of users, each pair in its own direct
//     conversation; each sender sends Messages messages over WebSocket with
//     Window in flight; measures durable sends/s, ack latency (send to
//     ack) and delivery latency (send to the receiver's push).
//   - fanout: one group of Members members, all connected; one member sends
//     Messages messages at Rate per second; measures delivery latency over
//     every (message, member) pair and counts missing deliveries.
//   - idle: Conns authenticated connections that do nothing; measures the
//     server's resident memory per connection from its /metrics.
//   - upload: Senders users, each in a group of its own, upload Uploads
//     files of FileSize bytes (PDF header, random bytes) one after
//     another; measures uploads/s, MB/s and upload latency.
package loadtest
