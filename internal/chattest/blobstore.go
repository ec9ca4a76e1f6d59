package chattest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/natter-chat/natter/internal/chat"
)

// TestBlobStore runs the chat.BlobStore conformance suite. open must
// return a fresh, empty store and release it when t ends; it is called
// once per subtest.
func TestBlobStore(t *testing.T, open func(t testing.TB) chat.BlobStore) {
	cases := []struct {
		name string
		test func(t *testing.T, b chat.BlobStore)
	}{
		{"a stored blob reads back whole with its size and time", blobReadsBack},
		{"a put replaces the blob", blobReplaced},
		{"a large blob reads back whole", func(t *testing.T, b chat.BlobStore) {
			want := blobBytes(5<<20 + 123)
			blobPut(t, b, "att/large/content", want)
			if got := blobRead(t, b, "att/large/content"); !bytes.Equal(got, want) {
				t.Fatalf("read %d bytes back, want the %d stored", len(got), len(want))
			}
		}},
		{"ranges are served from the blob", blobRanges},
		{"absent blobs are not found and deletes are idempotent", func(t *testing.T, b chat.BlobStore) {
			ctx := t.Context()
			if _, _, _, err := b.Open(ctx, "att/none/content"); !chat.IsCode(err, chat.CodeNotFound) {
				t.Fatalf("Open(absent) = %v, want not_found", err)
			}
			if err := b.Delete(ctx, "att/none/content"); err != nil {
				t.Fatalf("Delete(absent) = %v", err)
			}
			blobPut(t, b, "att/some/content", []byte("x"))
			mustNot(t, "Delete", b.Delete(ctx, "att/some/content"))
			if _, _, _, err := b.Open(ctx, "att/some/content"); !chat.IsCode(err, chat.CodeNotFound) {
				t.Fatalf("Open after Delete = %v, want not_found", err)
			}
			mustNot(t, "Delete twice", b.Delete(ctx, "att/some/content"))
		}},
		{"keys outside the alphabet are refused", func(t *testing.T, b chat.BlobStore) {
			ctx := t.Context()
			for _, key := range []string{"", "../x", "a/../../x", "/abs", "a//b", "A", "a/./b", "a\\b", "a/", strings.Repeat("k", 201)} {
				if _, err := b.Put(ctx, key, strings.NewReader("x")); !chat.IsCode(err, chat.CodeInvalidArgument) {
					t.Errorf("Put(%q) = %v, want invalid_argument", key, err)
				}
				if _, _, _, err := b.Open(ctx, key); !chat.IsCode(err, chat.CodeInvalidArgument) {
					t.Errorf("Open(%q) = %v, want invalid_argument", key, err)
				}
				if err := b.Delete(ctx, key); !chat.IsCode(err, chat.CodeInvalidArgument) {
					t.Errorf("Delete(%q) = %v, want invalid_argument", key, err)
				}
			}
		}},
		{"a failed put keeps the old blob", func(t *testing.T, b chat.BlobStore) {
			blobPut(t, b, "k", []byte("old"))
			broken := io.MultiReader(bytes.NewReader(blobBytes(2<<20)), errReader{})
			if _, err := b.Put(t.Context(), "k", broken); err == nil {
				t.Fatal("Put from a failing reader succeeded")
			}
			if got := blobRead(t, b, "k"); string(got) != "old" {
				t.Fatalf("blob is %d bytes after a failed put, want old", len(got))
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.test(t, open(t)) })
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("the client went away") }

// blobBytes returns n bytes that differ from offset to offset.
func blobBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

func blobPut(t testing.TB, b chat.BlobStore, key string, data []byte) {
	t.Helper()
	n, err := b.Put(t.Context(), key, bytes.NewReader(data))
	if err != nil || n != int64(len(data)) {
		t.Fatalf("Put(%s) = %d, %v; want %d bytes", key, n, err, len(data))
	}
}

func blobRead(t testing.TB, b chat.BlobStore, key string) []byte {
	t.Helper()
	r, size, _, err := b.Open(t.Context(), key)
	if err != nil {
		t.Fatalf("Open(%s): %v", key, err)
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	if size != int64(len(got)) {
		t.Fatalf("Open(%s) said %d bytes, read %d", key, size, len(got))
	}
	return got
}

func blobReadsBack(t *testing.T, b chat.BlobStore) {
	want := blobBytes(70000)
	// A reader that is neither a file nor a buffer: its size is unknown.
	n, err := b.Put(t.Context(), "att/abc/content", io.MultiReader(bytes.NewReader(want[:1000]), bytes.NewReader(want[1000:])))
	if err != nil || n != int64(len(want)) {
		t.Fatalf("Put = %d, %v", n, err)
	}
	r, size, mod, err := b.Open(t.Context(), "att/abc/content")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, _ := io.ReadAll(r)
	if !bytes.Equal(got, want) || size != int64(len(want)) || mod.IsZero() {
		t.Fatalf("Open: %d bytes (equal %v), size %d, modtime %v", len(got), bytes.Equal(got, want), size, mod)
	}
}

func blobReplaced(t *testing.T, b chat.BlobStore) {
	blobPut(t, b, "att/abc/content", blobBytes(5000))
	blobPut(t, b, "att/abc/content", []byte("new"))
	if got := blobRead(t, b, "att/abc/content"); string(got) != "new" {
		t.Fatalf("after replacing: %q", got)
	}
}

// blobRanges serves a blob with http.ServeContent, as downloads do, and
// asks for ranges over real HTTP.
func blobRanges(t *testing.T, b chat.BlobStore) {
	data := blobBytes(300000)
	blobPut(t, b, "att/r/content", data)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _, mod, err := b.Open(r.Context(), "att/r/content")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer body.Close()
		http.ServeContent(w, r, "", mod, body)
	}))
	t.Cleanup(srv.Close)
	for _, c := range []struct {
		rng        string
		start, end int // the bytes expected: data[start:end]
	}{
		{"bytes=100-199", 100, 200},
		{"bytes=299000-", 299000, 300000},
		{"bytes=-50", 300000 - 50, 300000},
		{"bytes=0-0", 0, 1},
		{"", 0, 300000},
	} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL, nil)
		if c.rng != "" {
			req.Header.Set("Range", c.rng)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(res.Body)
		res.Body.Close()
		wantStatus, wantRange := http.StatusPartialContent, fmt.Sprintf("bytes %d-%d/%d", c.start, c.end-1, len(data))
		if c.rng == "" {
			wantStatus, wantRange = http.StatusOK, ""
		}
		if res.StatusCode != wantStatus || res.Header.Get("Content-Range") != wantRange || !bytes.Equal(got, data[c.start:c.end]) {
			t.Errorf("Range %q: %d %q, %d bytes (equal %v)", c.rng, res.StatusCode, res.Header.Get("Content-Range"), len(got), bytes.Equal(got, data[c.start:c.end]))
		}
	}
}
