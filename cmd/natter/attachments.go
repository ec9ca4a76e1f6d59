package main

import (
	"time"

	"github.com/natter-chat/natter/internal/app"
)

// attachmentFlags configure file attachments (embedded in serveCmd).
type attachmentFlags struct {
	BlobDir        string        `name:"blob-dir" help:"Where attachment bytes live; empty means <data>/blobs. In cluster mode attachments are off unless this names a directory every node shares." env:"NATTER_BLOB_DIR" type:"path"`
	MaxUploadBytes int64         `name:"max-upload-bytes" help:"Largest attachment in bytes (larger uploads get 413)." default:"104857600" env:"NATTER_MAX_UPLOAD_BYTES"`
	UploadGrace    time.Duration `name:"upload-grace" help:"An upload that no message carries is deleted this long after it was made." default:"24h" env:"NATTER_UPLOAD_GRACE"`
	AttachSweep    time.Duration `name:"attachment-sweep" help:"How often deleted and abandoned attachments are removed and missing thumbnails re-made." default:"1m" env:"NATTER_ATTACHMENT_SWEEP"`
	AttachURLTTL   time.Duration `name:"attachment-url-ttl" help:"How long a signed attachment download URL works." default:"10m" env:"NATTER_ATTACHMENT_URL_TTL"`
}

func (f attachmentFlags) config() app.AttachmentConfig {
	return app.AttachmentConfig{Dir: f.BlobDir, MaxUploadBytes: f.MaxUploadBytes, UploadGrace: f.UploadGrace, SweepInterval: f.AttachSweep, URLTTL: f.AttachURLTTL}
}
