package blob

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"

	"github.com/natter-chat/natter/internal/chat"
)

var _ chat.BlobStore = (*Disk)(nil)

// Disk is a chat.BlobStore in a local directory. Blobs live in sharded
// directories (objects/ab/cd/<key>, ab and cd taken from the SHA-256 of
// the key) so that no directory grows past a few thousand entries; tmp/
// holds writes in progress. It is safe for concurrent use.
type Disk struct {
	root *os.Root
}

// OpenDisk opens (creating it if needed) the blob directory dir. The
// caller must Close it.
func OpenDisk(dir string) (*Disk, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("blob: create %s: %w", dir, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("blob: open %s: %w", dir, err)
	}
	for _, sub := range []string{"objects", "tmp"} {
		if err := root.MkdirAll(sub, 0o700); err != nil {
			root.Close()
			return nil, fmt.Errorf("blob: create %s/%s: %w", dir, sub, err)
		}
	}
	// Leftovers of writes a crash interrupted are never renamed into place.
	if entries, err := fs.ReadDir(root.FS(), "tmp"); err == nil {
		for _, e := range entries {
			_ = root.Remove(path.Join("tmp", e.Name()))
		}
	}
	return &Disk{root: root}, nil
}

// Close releases the directory.
func (d *Disk) Close() error { return d.root.Close() }

// ValidKey reports whether key may name a blob (see chat.ValidBlobKey).
func ValidKey(key string) bool { return chat.ValidBlobKey(key) }

// file returns the directory and file name of key inside the root.
func file(key string) (dir, name string) {
	sum := sha256.Sum256([]byte(key))
	h := hex.EncodeToString(sum[:2])
	return path.Join("objects", h[:2], h[2:4]), strings.ReplaceAll(key, "/", "~")
}

func badKey(op, key string) error {
	return &chat.Error{Code: chat.CodeInvalidArgument, Message: "invalid blob key", Op: op, Err: fmt.Errorf("key %q", key)}
}

// Put implements chat.BlobStore: temp file, fsync, rename, fsync of the
// directory. Failures are CodeUnavailable; a ctx cancelled while copying
// stops the write and leaves the old blob.
func (d *Disk) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	const op = "blob.Put"
	if !ValidKey(key) {
		return 0, badKey(op, key)
	}
	dir, name := file(key)
	if err := d.root.MkdirAll(dir, 0o700); err != nil {
		return 0, chat.Unavailable(op, err)
	}
	tmp := path.Join("tmp", rand.Text())
	f, err := d.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, chat.Unavailable(op, err)
	}
	renamed := false
	defer func() {
		if !renamed {
			_ = d.root.Remove(tmp)
		}
	}()
	n, err := io.Copy(f, ctxReader{ctx, r})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, chat.Unavailable(op, err)
	}
	if err := d.root.Rename(tmp, path.Join(dir, name)); err != nil {
		return 0, chat.Unavailable(op, err)
	}
	renamed = true
	if err := d.syncDir(dir); err != nil {
		return 0, chat.Unavailable(op, err)
	}
	return n, nil
}

func (d *Disk) syncDir(dir string) error {
	f, err := d.root.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// Open implements chat.BlobStore.
func (d *Disk) Open(_ context.Context, key string) (io.ReadSeekCloser, int64, time.Time, error) {
	const op = "blob.Open"
	if !ValidKey(key) {
		return nil, 0, time.Time{}, badKey(op, key)
	}
	dir, name := file(key)
	f, err := d.root.Open(path.Join(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, time.Time{}, &chat.Error{Code: chat.CodeNotFound, Message: "no such blob", Op: op}
	}
	if err != nil {
		return nil, 0, time.Time{}, chat.Unavailable(op, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, time.Time{}, chat.Unavailable(op, err)
	}
	return f, st.Size(), st.ModTime(), nil
}

// Delete implements chat.BlobStore.
func (d *Disk) Delete(_ context.Context, key string) error {
	const op = "blob.Delete"
	if !ValidKey(key) {
		return badKey(op, key)
	}
	dir, name := file(key)
	err := d.root.Remove(path.Join(dir, name))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return chat.Unavailable(op, err)
	}
	return nil
}

// ctxReader stops a copy when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
