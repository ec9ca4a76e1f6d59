package auth

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// The default argon2id parameters: OWASP's recommended minimum (19 MiB of
// memory, 2 passes, 1 lane).
const (
	DefaultMemory  = 19456 // KiB
	DefaultTime    = 2
	DefaultThreads = 1
)

const (
	saltLen = 16
	keyLen  = 32

	// Bounds on the parameters Verify accepts from an encoded hash, so a
	// corrupted or hostile hash cannot make it allocate without limit.
	maxMemory  = 1 << 20 // KiB: 1 GiB
	maxTime    = 64
	maxEncoded = 256 // bytes of a whole PHC string
)

// ErrMalformedHash is returned by Verify and NeedsRehash for an encoded
// hash that is not a PHC argon2id string with sane parameters. It means the
// stored hash is corrupt: an internal failure, not a wrong password.
var ErrMalformedHash = errors.New("auth: malformed password hash")

// HasherOptions configures a Hasher. The zero value gives the OWASP
// parameters and is what production uses; tests set Memory and Time low
// (e.g. Memory 64, Time 1) so that hashing takes microseconds.
type HasherOptions struct {
	Memory        uint32 // argon2id memory in KiB; zero means DefaultMemory (19 MiB)
	Time          uint32 // argon2id passes; zero means DefaultTime
	Threads       uint8  // argon2id lanes; zero means DefaultThreads
	MaxConcurrent int    // hashes computed at once, each holding Memory; zero means runtime.NumCPU()
}

// Hasher hashes and verifies passwords with argon2id. It is safe for
// concurrent use. At most MaxConcurrent hashes run at once, which bounds
// the memory that a flood of logins can take (MaxConcurrent × Memory);
// callers beyond that wait their turn or until their context is done.
type Hasher struct {
	memory  uint32
	time    uint32
	threads uint8
	slots   chan struct{} // a token per running hash
	dummy   params        // what VerifyDummy hashes with
}

// params is one decoded PHC string.
type params struct {
	memory  uint32
	time    uint32
	threads uint8
	salt    []byte
	key     []byte
}

// NewHasher returns a Hasher with opts.
func NewHasher(opts HasherOptions) *Hasher {
	h := &Hasher{
		memory:  cmp.Or(opts.Memory, DefaultMemory),
		time:    cmp.Or(opts.Time, DefaultTime),
		threads: cmp.Or(opts.Threads, DefaultThreads),
		slots:   make(chan struct{}, max(1, cmp.Or(opts.MaxConcurrent, runtime.NumCPU()))),
	}
	h.dummy = params{
		memory: h.memory, time: h.time, threads: h.threads,
		salt: make([]byte, saltLen), key: make([]byte, keyLen),
	}
	return h
}

// Hash returns the PHC string of password with a fresh random salt, e.g.
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash> (unpadded standard base64).
// It fails only when ctx is done before a hashing slot frees up.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	p := params{memory: h.memory, time: h.time, threads: h.threads, salt: make([]byte, saltLen)}
	rand.Read(p.salt) // never fails, per its documentation
	key, err := h.derive(ctx, p, password)
	if err != nil {
		return "", fmt.Errorf("auth: hash password: %w", err)
	}
	p.key = key
	return p.encode(), nil
}

// Verify reports whether password matches encoded, a PHC string made by
// Hash (with any parameters: they are read from the string). The
// comparison takes constant time. A wrong password is (false, nil); an
// encoded hash that cannot be parsed is ErrMalformedHash; a context done
// before a hashing slot frees up is its error.
func (h *Hasher) Verify(ctx context.Context, encoded, password string) (bool, error) {
	p, err := decode(encoded)
	if err != nil {
		return false, err
	}
	key, err := h.derive(ctx, p, password)
	if err != nil {
		return false, fmt.Errorf("auth: verify password: %w", err)
	}
	return subtle.ConstantTimeCompare(key, p.key) == 1, nil
}

// VerifyDummy does the work of a Verify with the Hasher's own parameters
// against nothing. Call it when a login names a user that does not exist,
// so that such a login takes as long as a wrong password and response times
// do not reveal which usernames exist. It returns only a context's error.
func (h *Hasher) VerifyDummy(ctx context.Context, password string) error {
	key, err := h.derive(ctx, h.dummy, password)
	if err != nil {
		return fmt.Errorf("auth: verify password: %w", err)
	}
	subtle.ConstantTimeCompare(key, h.dummy.key)
	return nil
}

// NeedsRehash reports whether encoded was made with parameters other than
// the Hasher's, so that the caller should store a new hash of the password
// after a successful login. It returns ErrMalformedHash for a bad string.
func (h *Hasher) NeedsRehash(encoded string) (bool, error) {
	p, err := decode(encoded)
	if err != nil {
		return false, err
	}
	return p.memory != h.memory || p.time != h.time || p.threads != h.threads ||
		len(p.salt) != saltLen || len(p.key) != keyLen, nil
}

// derive runs argon2id once a slot is free.
func (h *Hasher) derive(ctx context.Context, p params, password string) ([]byte, error) {
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	select {
	case h.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	defer func() { <-h.slots }()
	n := uint32(len(p.key))
	if n == 0 {
		n = keyLen
	}
	return argon2.IDKey([]byte(password), p.salt, p.time, p.memory, p.threads, n), nil
}

func (p params) encode() string {
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.memory, p.time, p.threads,
		b64.EncodeToString(p.salt), b64.EncodeToString(p.key))
}

// decode parses a PHC argon2id string strictly: the parameters must be in
// the order Hash writes them and within bounds argon2 accepts.
func decode(encoded string) (params, error) {
	var p params
	if len(encoded) > maxEncoded {
		return p, fmt.Errorf("%w: longer than %d bytes", ErrMalformedHash, maxEncoded)
	}
	fields := strings.Split(encoded, "$")
	if len(fields) != 6 || fields[0] != "" {
		return p, fmt.Errorf("%w: want 5 fields separated by '$'", ErrMalformedHash)
	}
	if fields[1] != "argon2id" {
		return p, fmt.Errorf("%w: algorithm %q is not argon2id", ErrMalformedHash, fields[1])
	}
	if fields[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return p, fmt.Errorf("%w: version %q is not v=%d", ErrMalformedHash, fields[2], argon2.Version)
	}
	if err := p.decodeParams(fields[3]); err != nil {
		return p, err
	}
	var err error
	b64 := base64.RawStdEncoding.Strict()
	if p.salt, err = b64.DecodeString(fields[4]); err != nil || len(p.salt) < 8 {
		return p, fmt.Errorf("%w: the salt is not base64 of at least 8 bytes", ErrMalformedHash)
	}
	if p.key, err = b64.DecodeString(fields[5]); err != nil || len(p.key) < 16 {
		return p, fmt.Errorf("%w: the hash is not base64 of at least 16 bytes", ErrMalformedHash)
	}
	return p, nil
}

// decodeParams parses "m=<KiB>,t=<passes>,p=<lanes>" into p.
func (p *params) decodeParams(s string) error {
	bad := fmt.Errorf("%w: parameters %q are not m=<KiB>,t=<passes>,p=<lanes>", ErrMalformedHash, s)
	parts := strings.Split(s, ",")
	if len(parts) != 3 {
		return bad
	}
	var vals [3]uint64
	for i, name := range []string{"m=", "t=", "p="} {
		digits, ok := strings.CutPrefix(parts[i], name)
		v, err := strconv.ParseUint(digits, 10, 32)
		if !ok || err != nil {
			return bad
		}
		vals[i] = v
	}
	m, t, threads := vals[0], vals[1], vals[2]
	switch {
	case t < 1 || t > maxTime:
		return fmt.Errorf("%w: t=%d is not between 1 and %d", ErrMalformedHash, t, maxTime)
	case threads < 1 || threads > 255:
		return fmt.Errorf("%w: p=%d is not between 1 and 255", ErrMalformedHash, threads)
	case m < 8*threads || m > maxMemory:
		return fmt.Errorf("%w: m=%d is not between 8×p and %d", ErrMalformedHash, m, maxMemory)
	}
	p.memory, p.time, p.threads = uint32(m), uint32(t), uint8(threads)
	return nil
}
