package auth_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/natter-chat/natter/internal/auth"
)

func TestLoadOrCreateKey_createsThenReloads(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data") // does not exist yet
	key, err := auth.LoadOrCreateKey(dir)
	if err != nil {
		t.Fatalf("first start: %v", err)
	}
	path := filepath.Join(dir, "jwt-ed25519.key")
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && info.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %v, want 0600", info.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if block, _ := pem.Decode(data); block == nil || block.Type != "PRIVATE KEY" {
		t.Errorf("key file is not a PEM PRIVATE KEY:\n%s", data)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("dir holds %d entries, want only the key file (no temporary file left)", len(entries))
	}

	again, err := auth.LoadOrCreateKey(dir)
	if err != nil {
		t.Fatalf("second start: %v", err)
	}
	if !key.Equal(again) {
		t.Error("second start loaded another key than the first created")
	}
}

func TestLoadOrCreateKey_concurrentFirstStartsAgree(t *testing.T) {
	dir := t.TempDir()
	keys := make([]ed25519.PrivateKey, 8)
	errs := make([]error, len(keys))
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() {
			k, err := auth.LoadOrCreateKey(dir)
			keys[i], errs[i] = k, err
		})
	}
	wg.Wait()
	final, err := auth.LoadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range keys {
		if errs[i] != nil {
			t.Fatalf("start %d: %v", i, errs[i])
		}
		if !final.Equal(keys[i]) {
			t.Errorf("start %d got a key other than the one on disk", i)
		}
	}
}

func TestLoadOrCreateKey_rejectsBadFiles(t *testing.T) {
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalPKCS8PrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"not PEM", []byte("hello")},
		{"wrong block type", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2, 3}})},
		{"not PKCS#8", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}})},
		{"an ECDSA key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "jwt-ed25519.key")
			if err := os.WriteFile(path, tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := auth.LoadOrCreateKey(dir); err == nil {
				t.Fatal("LoadOrCreateKey succeeded, want an error")
			}
			after, err := os.ReadFile(path)
			if err != nil || string(after) != string(tt.data) {
				t.Errorf("the bad key file was changed or removed (err %v)", err)
			}
		})
	}
}
