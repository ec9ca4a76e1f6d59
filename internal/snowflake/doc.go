// Package snowflake generates Natter's 63-bit, time-sortable ids: users,
// conversations, messages and sessions are all numbered by a Generator.
//
// An id is, from the most significant bit down: a zero sign bit, 41 bits of
// milliseconds since the epoch 2026-01-01T00:00:00Z (EpochUnixMilli; 41
// bits last until 2095), 10 bits of node id (0 to 1023) and a 12-bit
// sequence number within the millisecond. Ids from one Generator are
// positive and strictly increasing, even when the clock steps backwards (the
// generator keeps counting in the last millisecond it saw) or when more than
// 4096 ids are asked for in one millisecond (it borrows the next
// millisecond, so a generator asked for more than 4 million ids a second
// runs ahead of its clock until demand drops). Ids from Generators with distinct node ids never collide, so
// every node of a cluster needs its own node id. Time and Node decode an id;
// the time is that of the generator's clock, so ids of different nodes sort
// by time only as well as the nodes' clocks agree.
package snowflake
