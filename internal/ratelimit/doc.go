// Package ratelimit limits how often each key (a user, a connection, an
// address) may act, with one token bucket per key.
//
// Invariants. A bucket holds at most Burst tokens and gains Rate tokens per
// second; a call is allowed when the key's bucket has the tokens it asks
// for, and only an allowed call takes tokens, so a refused client is told
// exactly how long to wait. At most MaxKeys buckets are kept: the least
// recently used are forgotten first (within each shard of the keys), and a forgotten key starts again with a
// full bucket, so eviction can only make the limiter more lenient, never
// refuse a call that should pass. Time comes from the injected Now; a clock
// going backwards adds no tokens. Every call is O(1), takes one short lock
// on one of several shards, and allocates nothing for a known key.
package ratelimit
