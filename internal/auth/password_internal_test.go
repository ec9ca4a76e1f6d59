package auth

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestHasher_waitsForAFreeSlot(t *testing.T) {
	h := NewHasher(HasherOptions{Memory: 64, Time: 1, MaxConcurrent: 1})
	if got := cap(h.slots); got != 1 {
		t.Fatalf("slots = %d, want 1", got)
	}
	h.slots <- struct{}{} // another hash is running

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	if _, err := h.Hash(ctx, "correct horse battery staple"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Hash while the only slot is taken: error = %v, want context.DeadlineExceeded", err)
	}

	<-h.slots // it finished
	if _, err := h.Hash(t.Context(), "correct horse battery staple"); err != nil {
		t.Fatalf("Hash once the slot is free: %v", err)
	}
	if n := len(h.slots); n != 0 {
		t.Errorf("%d slots still taken after Hash returned, want 0", n)
	}
}

func TestNewHasher_defaults(t *testing.T) {
	h := NewHasher(HasherOptions{})
	if h.memory != 19456 || h.time != 2 || h.threads != 1 {
		t.Errorf("default parameters m=%d,t=%d,p=%d; want m=19456,t=2,p=1", h.memory, h.time, h.threads)
	}
	if cap(h.slots) < 1 {
		t.Errorf("default MaxConcurrent = %d, want at least 1", cap(h.slots))
	}
}
