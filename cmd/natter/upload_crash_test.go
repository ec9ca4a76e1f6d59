package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/natter-chat/natter/client"
)

// pdfBytes returns n bytes that the server accepts as a PDF and stores
// unchanged (only images are re-encoded), so their SHA-256 can be compared.
func pdfBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	_, _ = rand.Read(b)
	copy(b, "%PDF-1.4\n")
	return b
}

// halfPut starts a PUT of body to the upload id that announces the whole
// body but sends only its first half, then keeps the request open. It
// returns a func that reports the request's outcome once the server is
// gone. contentRange is empty for a single-PUT upload.
func halfPut(t *testing.T, base, token, id, contentRange string, body []byte) (wait func() error) {
	t.Helper()
	pr, pw := io.Pipe()
	req, err := http.NewRequest(http.MethodPut, base+"/v1/attachments/"+id+"/content", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(body))
	req.Header.Set("Authorization", "Bearer "+token)
	if contentRange != "" {
		req.Header.Set("Content-Range", contentRange)
	}
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			err = fmt.Errorf("the server answered %s to a body it never fully received", resp.Status)
		}
		done <- err
	}()
	go func() {
		_, _ = pw.Write(body[:len(body)/2]) // the rest never comes: the server dies first
	}()
	t.Cleanup(func() { pw.Close() })
	return func() error {
		select {
		case err := <-done:
			pw.Close()
			return err
		case <-time.After(30 * time.Second):
			return fmt.Errorf("the half PUT did not end after the server was killed")
		}
	}
}

// waitTempBytes waits until the blob store's tmp/ directory holds files
// that together have at least n bytes: the server is then writing the
// half-sent bodies.
func waitTempBytes(t *testing.T, dir string, n int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var total int64
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if info, err := e.Info(); err == nil {
				total += info.Size()
			}
		}
		if total >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server wrote %d bytes of the half bodies to %s within 30s, want %d", total, dir, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// blobFiles lists the files under the blob directory's objects/ tree as
// path → size.
func blobFiles(t *testing.T, blobs string) map[string]int64 {
	t.Helper()
	files := make(map[string]int64)
	err := filepath.WalkDir(filepath.Join(blobs, "objects"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		files[p] = info.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestSIGKILL_MidUploadLeavesNoHalfFile kills the server while two PUT
// bodies stream in (the third chunk of a chunked upload and a single-PUT
// upload), restarts it on the same data directory, and checks that only
// whole chunks count, nothing unfinished is served or sendable, no half
// blob is visible, and both uploads complete from where they stand.
func TestSIGKILL_MidUploadLeavesNoHalfFile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the real binary; skipped with -short")
	}
	bin := buildBinary(t)
	dataDir := t.TempDir()
	blobs := filepath.Join(dataDir, "blobs")
	srv := startServer(t, bin, dataDir)

	alice := client.New(srv.URL, client.Options{})
	bob := client.New(srv.URL, client.Options{})
	if _, err := alice.Register(ctxT(t), "alice", "a long enough passphrase"); err != nil {
		t.Fatal(err)
	}
	b, err := bob.Register(ctxT(t), "bob", "a long enough passphrase")
	if err != nil {
		t.Fatal(err)
	}
	group, err := alice.CreateGroup(ctxT(t), "uploads", []string{b.User.ID})
	if err != nil {
		t.Fatal(err)
	}

	const chunk = 1 << 20
	file := pdfBytes(t, 4*chunk+12345)
	size := int64(len(file))
	chunked, err := alice.CreateUpload(ctxT(t), group.ID, "report.pdf", size, "application/pdf")
	if err != nil {
		t.Fatal(err)
	}
	for start := int64(0); start < 2*chunk; start += chunk {
		if _, err := alice.UploadChunk(ctxT(t), chunked.ID, start, file[start:start+chunk], size); err != nil {
			t.Fatal(err)
		}
	}
	whole := pdfBytes(t, 3*chunk)
	single, err := alice.CreateUpload(ctxT(t), group.ID, "whole.pdf", int64(len(whole)), "application/pdf")
	if err != nil {
		t.Fatal(err)
	}

	token := alice.Tokens().AccessToken
	third := file[2*chunk : 3*chunk]
	waitChunk := halfPut(t, srv.URL, token, chunked.ID, fmt.Sprintf("bytes %d-%d/%d", 2*chunk, 3*chunk-1, size), third)
	waitSingle := halfPut(t, srv.URL, token, single.ID, "", whole)
	waitTempBytes(t, filepath.Join(blobs, "tmp"), int64(len(third)/2+len(whole)/2))
	if err := srv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = srv.cmd.Wait()
	for _, wait := range []func() error{waitChunk, waitSingle} {
		if err := wait(); err == nil || strings.Contains(err.Error(), "answered") {
			t.Fatalf("a half PUT: %v, want a broken connection", err)
		}
	}

	srv2 := startServer(t, bin, dataDir)
	alice2 := client.New(srv2.URL, client.Options{})
	alice2.SetTokens(alice.Tokens())
	bob2 := client.New(srv2.URL, client.Options{})
	bob2.SetTokens(bob.Tokens())

	// Only the two whole chunks count; the single PUT stored nothing.
	for _, want := range []struct {
		id       string
		received int64
	}{{chunked.ID, 2 * chunk}, {single.ID, 0}} {
		u, err := alice2.Attachment(ctxT(t), want.id)
		if err != nil {
			t.Fatal(err)
		}
		if u.State != "uploading" || u.Received != want.received {
			t.Fatalf("after the crash upload %s is %s with %d bytes, want uploading with %d", want.id, u.State, u.Received, want.received)
		}
		for _, thumb := range []bool{false, true} {
			_, err := alice2.Download(ctxT(t), want.id, thumb, io.Discard)
			if client.ErrorCode(err) != "not_found" {
				t.Fatalf("download of the unfinished upload (thumbnail %v): %v, want not_found", thumb, err)
			}
		}
		if _, err := alice2.AttachmentURL(ctxT(t), want.id); client.ErrorCode(err) != "conflict" {
			t.Fatalf("signed URL of the unfinished upload: %v, want conflict", err)
		}
		if _, err := bob2.Attachment(ctxT(t), want.id); client.ErrorCode(err) != "not_found" {
			t.Fatalf("bob sees alice's unsent upload: %v, want not_found", err)
		}
		_, err = alice2.SendAttachments(ctxT(t), group.ID, "send-"+want.id, "here", []string{want.id})
		if code := client.ErrorCode(err); code != "conflict" && code != "not_found" {
			t.Fatalf("sending the unfinished upload: %v, want it refused", err)
		}
	}

	// The half bodies are gone from tmp/ and never reached objects/: every
	// blob is a whole chunk of the chunked upload, named by its range.
	if entries, err := os.ReadDir(filepath.Join(blobs, "tmp")); err != nil || len(entries) != 0 {
		t.Fatalf("tmp/ after the restart: %d entries (%v), want none", len(entries), err)
	}
	files := blobFiles(t, blobs)
	if len(files) != 2 {
		t.Fatalf("blobs after the crash: %v, want the two whole chunks", files)
	}
	for p, n := range files {
		name := filepath.Base(p)
		rest, ok := strings.CutPrefix(name, "up~"+chunked.ID+"~")
		if !ok {
			t.Fatalf("blob %s belongs to no stored chunk", p)
		}
		rng := strings.SplitN(rest, "-", 3)
		first, err1 := strconv.ParseInt(rng[0], 10, 64)
		last, err2 := strconv.ParseInt(rng[1], 10, 64)
		if err1 != nil || err2 != nil || first%chunk != 0 || last-first != chunk || first >= 2*chunk {
			t.Fatalf("blob %s is not one of the two stored chunks", p)
		}
		if n != last-first {
			t.Fatalf("blob %s has %d bytes, want %d", p, n, last-first)
		}
	}

	// Both uploads continue from where they stand and arrive intact.
	for _, up := range []struct {
		id   string
		data []byte
	}{{chunked.ID, file}, {single.ID, whole}} {
		u, err := alice2.ResumeUpload(ctxT(t), up.id, bytes.NewReader(up.data), int64(len(up.data)), chunk)
		if err != nil {
			t.Fatal(err)
		}
		want := sha256.Sum256(up.data)
		if u.State != "ready" || u.SHA256 != fmt.Sprintf("%x", want) {
			t.Fatalf("resumed upload is %s with sha256 %s, want ready with %x", u.State, u.SHA256, want)
		}
		h := sha256.New()
		if _, err := alice2.Download(ctxT(t), up.id, false, h); err != nil {
			t.Fatal(err)
		}
		if got := h.Sum(nil); !bytes.Equal(got, want[:]) {
			t.Fatalf("downloaded %x, want %x", got, want)
		}
		if _, err := alice2.SendAttachments(ctxT(t), group.ID, "sent-"+up.id, "", []string{up.id}); err != nil {
			t.Fatal(err)
		}
	}
	// After the send the parts are gone: what remains is one content blob
	// of the full size per attachment.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		files = blobFiles(t, blobs)
		if len(files) == 2 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for p, n := range files {
		name := filepath.Base(p)
		switch name {
		case "att~" + chunked.ID + "~content":
			if n != size {
				t.Errorf("content blob %s has %d bytes, want %d", p, n, size)
			}
		case "att~" + single.ID + "~content":
			if n != int64(len(whole)) {
				t.Errorf("content blob %s has %d bytes, want %d", p, n, len(whole))
			}
		default:
			t.Errorf("blob %s is left over after both uploads finished", p)
		}
	}
}
