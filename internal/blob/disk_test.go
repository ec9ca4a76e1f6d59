package blob_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/natter-chat/natter/internal/blob"
	"github.com/natter-chat/natter/internal/chat"
)

func openDisk(t *testing.T) (*blob.Disk, string) {
	t.Helper()
	dir := t.TempDir()
	d, err := blob.OpenDisk(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, dir
}

func TestDisk_PutOpenDelete(t *testing.T) {
	d, _ := openDisk(t)
	ctx := t.Context()
	want := bytes.Repeat([]byte("natter"), 10000)
	n, err := d.Put(ctx, "att/abc/content", bytes.NewReader(want))
	if err != nil || n != int64(len(want)) {
		t.Fatalf("Put = %d, %v", n, err)
	}
	f, size, mod, err := d.Open(ctx, "att/abc/content")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	got, _ := io.ReadAll(f)
	f.Close()
	if !bytes.Equal(got, want) || size != int64(len(want)) || mod.IsZero() {
		t.Fatalf("Open returned %d bytes, size %d, modtime %v", len(got), size, mod)
	}
	if _, err := d.Put(ctx, "att/abc/content", strings.NewReader("new")); err != nil {
		t.Fatalf("Put over: %v", err)
	}
	f, size, _, _ = d.Open(ctx, "att/abc/content")
	got, _ = io.ReadAll(f)
	f.Close()
	if string(got) != "new" || size != 3 {
		t.Fatalf("after replacing: %q (size %d)", got, size)
	}
	if err := d.Delete(ctx, "att/abc/content"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, _, _, err := d.Open(ctx, "att/abc/content"); !chat.IsCode(err, chat.CodeNotFound) {
		t.Fatalf("Open after Delete: %v, want not_found", err)
	}
	if err := d.Delete(ctx, "att/abc/content"); err != nil {
		t.Fatalf("Delete twice: %v", err)
	}
}

func TestDisk_BadKeysAreRefused(t *testing.T) {
	d, _ := openDisk(t)
	for _, key := range []string{"", "../x", "a/../../x", "/abs", "a//b", "A", "a/./b", "a\\b", "a/"} {
		if _, err := d.Put(t.Context(), key, strings.NewReader("x")); !chat.IsCode(err, chat.CodeInvalidArgument) {
			t.Errorf("Put(%q) = %v, want invalid_argument", key, err)
		}
	}
}

type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.ErrUnexpectedEOF
	}
	r.n--
	return copy(p, "partial"), nil
}

func TestDisk_FailedPutKeepsTheOldBlobAndNoTempFile(t *testing.T) {
	d, dir := openDisk(t)
	ctx := t.Context()
	if _, err := d.Put(ctx, "k", strings.NewReader("old")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Put(ctx, "k", &failingReader{n: 3}); err == nil {
		t.Fatal("Put from a failing reader succeeded")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := d.Put(cctx, "k", strings.NewReader("cancelled")); err == nil {
		t.Fatal("Put with a cancelled context succeeded")
	}
	f, _, _, err := d.Open(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(f)
	f.Close()
	if string(got) != "old" {
		t.Fatalf("blob is %q after failed writes, want old", got)
	}
	left, _ := os.ReadDir(filepath.Join(dir, "tmp"))
	if len(left) != 0 {
		t.Fatalf("tmp holds %d files after failed writes", len(left))
	}
}
