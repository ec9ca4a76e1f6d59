package auth_test

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/natter-chat/natter/internal/auth"
)

// cheapHasher returns a Hasher whose argon2id parameters make a hash take
// microseconds instead of tens of milliseconds.
func cheapHasher(tb testing.TB) *auth.Hasher {
	tb.Helper()
	return auth.NewHasher(auth.HasherOptions{Memory: 64, Time: 1})
}

func TestHasher_Hash_writesPHCString(t *testing.T) {
	h := cheapHasher(t)
	encoded, err := h.Hash(t.Context(), "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	phc := regexp.MustCompile(`^\$argon2id\$v=19\$m=64,t=1,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	if !phc.MatchString(encoded) {
		t.Errorf("Hash = %q, want a PHC argon2id string with a 16-byte salt and a 32-byte hash", encoded)
	}
	again, err := h.Hash(t.Context(), "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if again == encoded {
		t.Errorf("two hashes of one password are equal (%q): the salt is not random", encoded)
	}
}

func TestHasher_Hash_defaultsToOWASPParameters(t *testing.T) {
	if testing.Short() {
		t.Skip("hashes with 19 MiB")
	}
	encoded, err := auth.NewHasher(auth.HasherOptions{}).Hash(t.Context(), "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if want := "$argon2id$v=19$m=19456,t=2,p=1$"; !strings.HasPrefix(encoded, want) {
		t.Errorf("Hash = %q, want prefix %q", encoded, want)
	}
}

func TestHasher_Verify(t *testing.T) {
	h := cheapHasher(t)
	encoded, err := h.Hash(t.Context(), "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		password string
		want     bool
	}{
		{"right password matches", "correct horse battery staple", true},
		{"wrong password does not match", "correct horse battery stapler", false},
		{"other case does not match", "Correct horse battery staple", false},
		{"empty password does not match", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := h.Verify(t.Context(), encoded, tt.password)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Verify = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestHasher_Verify_readsParametersFromTheHash(t *testing.T) {
	old := auth.NewHasher(auth.HasherOptions{Memory: 32, Time: 3, Threads: 2})
	encoded, err := old.Hash(t.Context(), "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	current := cheapHasher(t)
	ok, err := current.Verify(t.Context(), encoded, "correct horse battery staple")
	if err != nil || !ok {
		t.Fatalf("Verify of a hash with other parameters = %v, %v; want true, nil", ok, err)
	}
	if rehash, err := current.NeedsRehash(encoded); err != nil || !rehash {
		t.Errorf("NeedsRehash(hash with other parameters) = %v, %v; want true, nil", rehash, err)
	}
	fresh, err := current.Hash(t.Context(), "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if rehash, err := current.NeedsRehash(fresh); err != nil || rehash {
		t.Errorf("NeedsRehash(own hash) = %v, %v; want false, nil", rehash, err)
	}
}

func TestHasher_Verify_tamperedHashIsAnError(t *testing.T) {
	h := cheapHasher(t)
	const salt, key = "c29tZXNhbHRzb21lc2FsdA", "a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U"
	tests := []struct {
		name    string
		encoded string
	}{
		{"empty", ""},
		{"plain text", "hunter2"},
		{"bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{"argon2i", "$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + key},
		{"old version", "$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key},
		{"no version", "$argon2id$m=64,t=1,p=1$" + salt + "$" + key},
		{"params out of order", "$argon2id$v=19$t=1,m=64,p=1$" + salt + "$" + key},
		{"param missing", "$argon2id$v=19$m=64,t=1$" + salt + "$" + key},
		{"param not a number", "$argon2id$v=19$m=64,t=x,p=1$" + salt + "$" + key},
		{"negative param", "$argon2id$v=19$m=64,t=-1,p=1$" + salt + "$" + key},
		{"zero passes", "$argon2id$v=19$m=64,t=0,p=1$" + salt + "$" + key},
		{"zero lanes", "$argon2id$v=19$m=64,t=1,p=0$" + salt + "$" + key},
		{"too many lanes", "$argon2id$v=19$m=4096,t=1,p=256$" + salt + "$" + key},
		{"too little memory", "$argon2id$v=19$m=7,t=1,p=1$" + salt + "$" + key},
		{"huge memory", "$argon2id$v=19$m=4294967295,t=1,p=1$" + salt + "$" + key},
		{"huge passes", "$argon2id$v=19$m=64,t=4294967295,p=1$" + salt + "$" + key},
		{"overflowing param", "$argon2id$v=19$m=99999999999999999999,t=1,p=1$" + salt + "$" + key},
		{"salt not base64", "$argon2id$v=19$m=64,t=1,p=1$!!!!$" + key},
		{"empty salt", "$argon2id$v=19$m=64,t=1,p=1$$" + key},
		{"hash not base64", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$%%%"},
		{"short hash", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$a2V5"},
		{"padded hash", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key + "="},
		{"extra field", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key + "$x"},
		{"no leading dollar", "argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key},
		{"very long", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + strings.Repeat("A", 10000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := h.Verify(t.Context(), tt.encoded, "password")
			if ok || !errors.Is(err, auth.ErrMalformedHash) {
				t.Errorf("Verify = %v, %v; want false, ErrMalformedHash", ok, err)
			}
			if _, err := h.NeedsRehash(tt.encoded); !errors.Is(err, auth.ErrMalformedHash) {
				t.Errorf("NeedsRehash error = %v, want ErrMalformedHash", err)
			}
		})
	}
}

func TestHasher_Verify_flippedHashByteDoesNotMatch(t *testing.T) {
	h := cheapHasher(t)
	encoded, err := h.Hash(t.Context(), "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	// Change one character in the middle of the hash to another valid
	// base64 character (flipping a bit could leave the alphabet).
	i := len(encoded) - 10
	repl := byte('A')
	if encoded[i] == 'A' {
		repl = 'B'
	}
	flipped := encoded[:i] + string(repl) + encoded[i+1:]
	ok, err := h.Verify(t.Context(), flipped, "correct horse battery staple")
	if ok || err != nil {
		t.Errorf("Verify of a hash with a flipped character = %v, %v; want false, nil", ok, err)
	}
}

func TestHasher_VerifyDummy(t *testing.T) {
	h := cheapHasher(t)
	if err := h.VerifyDummy(t.Context(), "whatever"); err != nil {
		t.Errorf("VerifyDummy = %v, want nil", err)
	}
}

func TestHasher_cancelledContextIsAnError(t *testing.T) {
	h := cheapHasher(t)
	encoded, err := h.Hash(t.Context(), "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := h.Hash(ctx, "x"); !errors.Is(err, context.Canceled) {
		t.Errorf("Hash error = %v, want context.Canceled", err)
	}
	if ok, err := h.Verify(ctx, encoded, "correct horse battery staple"); ok || !errors.Is(err, context.Canceled) {
		t.Errorf("Verify = %v, %v; want false, context.Canceled", ok, err)
	}
	if err := h.VerifyDummy(ctx, "x"); !errors.Is(err, context.Canceled) {
		t.Errorf("VerifyDummy error = %v, want context.Canceled", err)
	}
}

// BenchmarkHasher_Hash measures a hash with the production parameters.
func BenchmarkHasher_Hash(b *testing.B) {
	h := auth.NewHasher(auth.HasherOptions{})
	for b.Loop() {
		if _, err := h.Hash(b.Context(), "correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHasher_VerifyDummy shows that a login for an unknown user costs
// as much as a Verify (compare with BenchmarkHasher_Verify).
func BenchmarkHasher_VerifyDummy(b *testing.B) {
	h := auth.NewHasher(auth.HasherOptions{})
	for b.Loop() {
		if err := h.VerifyDummy(b.Context(), "correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHasher_Verify(b *testing.B) {
	h := auth.NewHasher(auth.HasherOptions{})
	encoded, err := h.Hash(b.Context(), "correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := h.Verify(b.Context(), encoded, "correct horse battery stapler"); err != nil {
			b.Fatal(err)
		}
	}
}
