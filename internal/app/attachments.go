package app

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/natter-chat/natter/internal/blob"
	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/core"
	"github.com/natter-chat/natter/internal/s3blob"
)

// AttachmentConfig configures file attachments. Zero values are
// documented per field.
type AttachmentConfig struct {
	// Dir is where attachment bytes live. Empty means <DataDir>/blobs in
	// embedded mode; in cluster mode attachments are off unless Dir names
	// a directory every node shares or Store is set.
	Dir string
	// Store, instead of Dir, keeps attachment bytes in an S3-compatible
	// bucket: s3://bucket[/prefix]?endpoint=host:port&region=..&secure=false&path_style=true
	// (see s3blob.ParseURL). Every node of a cluster can share it.
	Store string
	// ColdStore is where content older than ColdAfter moves: an s3://
	// URL like Store, or a directory (shared by every node, in cluster
	// mode). Empty means no cold tier.
	ColdStore string
	ColdAfter time.Duration // sent content this old moves to ColdStore; zero means never (ColdStore is then only read)
	// S3AccessKey and S3SecretKey sign the requests of every s3:// store;
	// S3CredentialsFile, if set, holds them instead (first line the access
	// key, second the secret key). All empty means anonymous requests.
	S3AccessKey, S3SecretKey string
	S3CredentialsFile        string
	MaxUploadBytes           int64         // largest file; zero means 100 MiB
	UploadGrace              time.Duration // an upload no message carries is removed this long after it was made; zero means 24h
	SweepInterval            time.Duration // how often garbage is removed, old content moved and missing thumbnails re-made; zero means 1m
	URLTTL                   time.Duration // how long a signed download URL works; zero means 10m
}

// attachParts are what core needs for attachments; zero when they are off.
type attachParts struct {
	store       chat.AttachmentStore
	blobs, cold chat.BlobStore
	tiers       chat.AttachmentTiers
	opts        core.AttachmentOptions
}

// check reports every problem of the configuration at once.
func (cfg AttachmentConfig) check() error {
	var errs []error
	if cfg.Dir != "" && cfg.Store != "" {
		errs = append(errs, errors.New("set the blob directory or the blob store (s3://), not both"))
	}
	if cfg.Store != "" && !strings.HasPrefix(cfg.Store, "s3://") {
		errs = append(errs, fmt.Errorf("the blob store must be an s3:// URL (for a directory, use the blob directory)"))
	}
	if cfg.ColdAfter < 0 {
		errs = append(errs, errors.New("the cold tier age must not be negative"))
	}
	if cfg.ColdStore != "" && (cfg.ColdStore == cfg.Store || cfg.ColdStore == cfg.Dir) {
		errs = append(errs, errors.New("the cold store must differ from the hot one"))
	}
	if cfg.S3CredentialsFile != "" && (cfg.S3AccessKey != "" || cfg.S3SecretKey != "") {
		errs = append(errs, errors.New("set the S3 credentials in the environment or in a file, not both"))
	}
	return errors.Join(errs...)
}

// setupAttachments opens the blob stores and returns what core needs
// for attachments, or zero parts (attachments off) in cluster mode
// without object storage or a shared directory. key is the token signing
// key; the URL signing key is derived from it, so every node of a
// cluster shares it too.
func (a *App) setupAttachments(ctx context.Context, key ed25519.PrivateKey) (attachParts, error) {
	cfg := a.cfg.Attachments
	store, ok := a.store.(chat.AttachmentStore)
	if !ok || (a.cluster != nil && cfg.Dir == "" && cfg.Store == "") {
		return attachParts{}, nil
	}
	if err := cfg.check(); err != nil {
		return attachParts{}, err
	}
	if cfg.S3CredentialsFile != "" {
		var err error
		if cfg.S3AccessKey, cfg.S3SecretKey, err = readS3Credentials(cfg.S3CredentialsFile); err != nil {
			return attachParts{}, err
		}
	}
	scratch := filepath.Join(a.cfg.DataDir, "scratch")
	hot := cfg.Store
	if cfg.Store == "" {
		hot = cfg.Dir
		if hot == "" {
			hot = filepath.Join(a.cfg.DataDir, "blobs")
		}
		scratch = filepath.Join(hot, "scratch")
	}
	if err := os.MkdirAll(scratch, 0o700); err != nil {
		return attachParts{}, fmt.Errorf("attachments: %w", err)
	}
	blobs, err := a.openBlobStore(ctx, hot, scratch, cfg)
	if err != nil {
		return attachParts{}, err
	}
	p := attachParts{store: store, blobs: blobs}
	if cfg.ColdStore != "" {
		if p.cold, err = a.openBlobStore(ctx, cfg.ColdStore, scratch, cfg); err != nil {
			return attachParts{}, fmt.Errorf("cold tier: %w", err)
		}
		if p.tiers, ok = a.store.(chat.AttachmentTiers); !ok {
			return attachParts{}, fmt.Errorf("cold tier: the store %T keeps no tiers", a.store)
		}
	}
	if p.cold != nil {
		a.log.Info("attachments", "store", fmt.Sprint(blobs), "cold", fmt.Sprint(p.cold), "cold_after", cfg.ColdAfter.String())
	} else {
		a.log.Info("attachments", "store", fmt.Sprint(blobs))
	}
	mac := hmac.New(sha256.New, key.Seed())
	mac.Write([]byte("natter attachment URL key v1"))
	p.opts = core.AttachmentOptions{
		MaxUploadBytes: cfg.MaxUploadBytes, UploadGrace: cfg.UploadGrace, SweepInterval: cfg.SweepInterval,
		URLTTL: cfg.URLTTL, URLKey: mac.Sum(nil), ScratchDir: scratch, ColdAfter: cfg.ColdAfter,
	}
	return p, nil
}

// openBlobStore opens spec, an s3:// URL or a directory, and registers
// it to be closed with the node.
func (a *App) openBlobStore(ctx context.Context, spec, scratch string, cfg AttachmentConfig) (chat.BlobStore, error) {
	if !strings.HasPrefix(spec, "s3://") {
		if strings.Contains(spec, "://") {
			return nil, fmt.Errorf("%q: a blob store is an s3:// URL or a directory", spec)
		}
		disk, err := blob.OpenDisk(spec)
		if err != nil {
			return nil, err
		}
		a.blobs = append(a.blobs, disk)
		return diskStore{disk, spec}, nil
	}
	s3cfg, err := s3blob.ParseURL(spec)
	if err != nil {
		return nil, err
	}
	s3cfg.AccessKey, s3cfg.SecretKey, s3cfg.ScratchDir = cfg.S3AccessKey, cfg.S3SecretKey, scratch
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	s, err := s3blob.Open(ctx, s3cfg)
	if err != nil {
		return nil, err
	}
	a.blobs = append(a.blobs, s)
	return s, nil
}

// diskStore names a blob directory in logs.
type diskStore struct {
	*blob.Disk
	dir string
}

func (d diskStore) String() string { return d.dir }

// readS3Credentials reads an access key and a secret key, one a line,
// from path. The error never shows the file's content.
func readS3Credentials(path string) (access, secret string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", "", fmt.Errorf("S3 credentials: %w", err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(io.LimitReader(f, 64<<10))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, l)
		}
	}
	if sc.Err() != nil || len(lines) != 2 {
		return "", "", fmt.Errorf("S3 credentials: %s must hold two lines, the access key and then the secret key", path)
	}
	return lines[0], lines[1], nil
}
