package main

import (
	"time"

	"github.com/natter-chat/natter/internal/app"
)

// attachmentFlags configure file attachments (embedded in serveCmd).
type attachmentFlags struct {
	BlobDir        string        `name:"blob-dir" help:"Where attachment bytes live; empty means <data>/blobs. In cluster mode attachments are off unless this names a directory every node shares or --blob-store is set." env:"NATTER_BLOB_DIR" type:"path"`
	BlobStore      string        `name:"blob-store" help:"Keep attachment bytes in an S3-compatible bucket instead of --blob-dir: s3://bucket[/prefix]?endpoint=host:port&region=...&secure=false&path_style=true. Credentials come from NATTER_S3_ACCESS_KEY and NATTER_S3_SECRET_KEY or --s3-credentials-file." env:"NATTER_BLOB_STORE"`
	ColdStore      string        `name:"attachment-cold-store" help:"Cold tier: where sent attachments older than --attachment-cold-after move (an s3:// URL like --blob-store, or a directory). Empty means none." env:"NATTER_ATTACHMENT_COLD_STORE"`
	ColdAfter      time.Duration `name:"attachment-cold-after" help:"With --attachment-cold-store: move attachment content this long after upload; 0 never moves (the cold store is then only read)." default:"720h" env:"NATTER_ATTACHMENT_COLD_AFTER"`
	S3AccessKey    string        `name:"s3-access-key" help:"Access key for s3:// stores (prefer the environment variable: flags show in ps)." env:"NATTER_S3_ACCESS_KEY"`
	S3SecretKey    string        `name:"s3-secret-key" help:"Secret key for s3:// stores (prefer the environment variable or --s3-credentials-file; never logged)." env:"NATTER_S3_SECRET_KEY"`
	S3Credentials  string        `name:"s3-credentials-file" help:"File holding the S3 access key on its first line and the secret key on its second." env:"NATTER_S3_CREDENTIALS_FILE" type:"path"`
	MaxUploadBytes int64         `name:"max-upload-bytes" help:"Largest attachment in bytes (larger uploads get 413)." default:"104857600" env:"NATTER_MAX_UPLOAD_BYTES"`
	UploadGrace    time.Duration `name:"upload-grace" help:"An upload that no message carries is deleted this long after it was made." default:"24h" env:"NATTER_UPLOAD_GRACE"`
	AttachSweep    time.Duration `name:"attachment-sweep" help:"How often deleted and abandoned attachments are removed and missing thumbnails re-made." default:"1m" env:"NATTER_ATTACHMENT_SWEEP"`
	AttachURLTTL   time.Duration `name:"attachment-url-ttl" help:"How long a signed attachment download URL works." default:"10m" env:"NATTER_ATTACHMENT_URL_TTL"`
}

func (f attachmentFlags) config() app.AttachmentConfig {
	cfg := app.AttachmentConfig{Dir: f.BlobDir, Store: f.BlobStore, ColdStore: f.ColdStore,
		S3AccessKey: f.S3AccessKey, S3SecretKey: f.S3SecretKey, S3CredentialsFile: f.S3Credentials,
		MaxUploadBytes: f.MaxUploadBytes, UploadGrace: f.UploadGrace, SweepInterval: f.AttachSweep, URLTTL: f.AttachURLTTL}
	if f.ColdStore != "" {
		cfg.ColdAfter = f.ColdAfter
	}
	return cfg
}
