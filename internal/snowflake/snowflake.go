package snowflake

import (
	"fmt"
	"sync/atomic"
	"time"
)

const (
	// EpochUnixMilli is millisecond zero of every id,
	// 2026-01-01T00:00:00Z, in Unix milliseconds.
	EpochUnixMilli = 1767225600000

	nodeBits = 10
	seqBits  = 12

	// MaxNode is the largest node id.
	MaxNode = 1<<nodeBits - 1

	seqMask   = 1<<seqBits - 1
	timeShift = nodeBits + seqBits
)

// Generator hands out ids for one node; it implements chat.IDGenerator. It
// is safe for concurrent use and never blocks: its state is one atomic word
// updated by compare-and-swap.
type Generator struct {
	node int64
	now  func() time.Time

	// state is the last id handed out without its node bits:
	// milliseconds since the epoch << seqBits | sequence. It only grows.
	state atomic.Int64
}

// New returns a generator for node, which must be in [0, MaxNode]. now is
// the clock; nil means time.Now.
func New(node int64, now func() time.Time) (*Generator, error) {
	if node < 0 || node > MaxNode {
		return nil, fmt.Errorf("snowflake: node id %d is out of range: it must be between 0 and %d", node, MaxNode)
	}
	if now == nil {
		now = time.Now
	}
	return &Generator{node: node, now: now}, nil
}

// NextID returns a positive id greater than every id this generator
// returned before.
func (g *Generator) NextID() int64 {
	ms := g.now().UnixMilli() - EpochUnixMilli
	for {
		old := g.state.Load()
		// old+1 is the next sequence number of the last millisecond and,
		// after sequence 4095, the first of the next millisecond: that
		// covers both a clock that went backwards and an exhausted
		// millisecond.
		next := max(ms<<seqBits, old+1)
		if g.state.CompareAndSwap(old, next) {
			return next>>seqBits<<timeShift | g.node<<seqBits | next&seqMask
		}
	}
}

// Time returns the millisecond in which id was generated, in UTC.
func Time(id int64) time.Time {
	return time.UnixMilli(EpochUnixMilli + id>>timeShift).UTC()
}

// Node returns the node id of the generator that made id.
func Node(id int64) int64 {
	return id >> seqBits & MaxNode
}
