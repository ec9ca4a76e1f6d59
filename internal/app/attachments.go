package app

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/natter-chat/natter/internal/blob"
	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/core"
)

// AttachmentConfig configures file attachments. Zero values are
// documented per field.
type AttachmentConfig struct {
	// Dir is where attachment bytes live. Empty means <DataDir>/blobs in
	// embedded mode; in cluster mode attachments are off unless Dir names
	// a directory every node shares (object storage is not supported yet).
	Dir            string
	MaxUploadBytes int64         // largest file; zero means 100 MiB
	UploadGrace    time.Duration // an upload no message carries is removed this long after it was made; zero means 24h
	SweepInterval  time.Duration // how often garbage is removed and missing thumbnails re-made; zero means 1m
	URLTTL         time.Duration // how long a signed download URL works; zero means 10m
}

// setupAttachments opens the blob directory and returns what core needs
// for attachments, or nil parts (attachments off) in cluster mode without
// a shared directory. key is the token signing key; the URL signing key
// is derived from it, so every node of a cluster shares it too.
func (a *App) setupAttachments(key ed25519.PrivateKey) (chat.AttachmentStore, chat.BlobStore, core.AttachmentOptions, error) {
	cfg := a.cfg.Attachments
	store, ok := a.store.(chat.AttachmentStore)
	if !ok || (a.cluster != nil && cfg.Dir == "") {
		return nil, nil, core.AttachmentOptions{}, nil
	}
	dir := cfg.Dir
	if dir == "" {
		dir = filepath.Join(a.cfg.DataDir, "blobs")
	}
	disk, err := blob.OpenDisk(dir)
	if err != nil {
		return nil, nil, core.AttachmentOptions{}, err
	}
	scratch := filepath.Join(dir, "scratch")
	if err := os.MkdirAll(scratch, 0o700); err != nil {
		disk.Close()
		return nil, nil, core.AttachmentOptions{}, fmt.Errorf("attachments: %w", err)
	}
	a.blobs = disk
	mac := hmac.New(sha256.New, key.Seed())
	mac.Write([]byte("natter attachment URL key v1"))
	return store, disk, core.AttachmentOptions{
		MaxUploadBytes: cfg.MaxUploadBytes, UploadGrace: cfg.UploadGrace, SweepInterval: cfg.SweepInterval,
		URLTTL: cfg.URLTTL, URLKey: mac.Sum(nil), ScratchDir: scratch,
	}, nil
}
