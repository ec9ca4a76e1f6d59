package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// contentSecurityPolicy allows nothing but the page's own origin: no
// inline script or style, no eval, no framing. 'self' in connect-src
// covers ws: and wss: to the same host (CSP Level 3).
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// contentType names the asset types the client uses; anything else is
// application/octet-stream (and nosniff keeps it that way). A fixed table
// rather than package mime, whose answers depend on the host's files.
func contentType(name string) string {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	case ".png":
		return "image/png"
	case ".json":
		return "application/json"
	case ".txt":
		return "text/plain; charset=utf-8"
	}
	return "application/octet-stream"
}

// asset is one embedded file, ready to serve.
type asset struct {
	body        []byte
	gzipped     []byte // nil when compression does not pay
	contentType string
	etag        string
}

// handler serves the assets; it is immutable after Handler returns.
type handler struct {
	assets map[string]*asset // by URL path, e.g. "/js/main.js"
	index  *asset
}

// Handler returns the web client. It answers GET and HEAD (other methods:
// 405): an embedded file by its path, and index.html for every other path
// that does not look like a file, so that client-side routes such as
// /c/123 survive a reload. A missing file (a path whose last segment has
// an extension) is 404. Responses are revalidated on every load
// (Cache-Control: no-cache with an ETag, so an unchanged file costs a 304)
// because file names carry no content hash; text assets are gzipped when
// the client accepts it.
//
// Mount it at "/" below the API routes: it must never see /v1/.
func Handler() http.Handler {
	h, err := newHandler(static)
	if err != nil {
		panic("web: embedded assets are unusable: " + err.Error()) // fixed at build time
	}
	return h
}

func newHandler(fsys fs.FS) (*handler, error) {
	root, err := fs.Sub(fsys, "static")
	if err != nil {
		return nil, err
	}
	h := &handler{assets: map[string]*asset{}}
	err = fs.WalkDir(root, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(root, name)
		if err != nil {
			return err
		}
		h.assets["/"+name] = newAsset(name, body)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if h.index = h.assets["/index.html"]; h.index == nil {
		return nil, fmt.Errorf("no index.html")
	}
	return h, nil
}

func newAsset(name string, body []byte) *asset {
	sum := sha256.Sum256(body)
	a := &asset{body: body, contentType: contentType(name), etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
	if strings.HasPrefix(a.contentType, "text/") || strings.HasPrefix(a.contentType, "image/svg") || a.contentType == "application/json" {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		_, _ = zw.Write(body)
		_ = zw.Close()
		if buf.Len() < len(body)*9/10 {
			a.gzipped = buf.Bytes()
		}
	}
	return a
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", contentSecurityPolicy)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("X-Frame-Options", "DENY")
	hdr.Set("Cross-Origin-Opener-Policy", "same-origin")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hdr.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	a := h.assets[r.URL.Path]
	if a == nil {
		if looksLikeFile(r.URL.Path) {
			http.NotFound(w, r)
			return
		}
		a = h.index
	}
	hdr.Set("Content-Type", a.contentType)
	hdr.Set("Cache-Control", "no-cache")
	body, etag := a.body, a.etag
	if a.gzipped != nil {
		hdr.Add("Vary", "Accept-Encoding")
		if acceptsGzip(r) {
			body, etag = a.gzipped, strings.TrimSuffix(a.etag, `"`)+`-gz"`
			hdr.Set("Content-Encoding", "gzip")
		}
	}
	hdr.Set("ETag", etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// looksLikeFile reports whether the last segment of p has an extension:
// such a path names an asset, and a missing asset must be a 404, not
// index.html served as a script.
func looksLikeFile(p string) bool {
	return strings.Contains(path.Base(p), ".")
}

// acceptsGzip reports whether Accept-Encoding lists gzip with a non-zero
// quality.
func acceptsGzip(r *http.Request) bool {
	for part := range strings.SplitSeq(r.Header.Get("Accept-Encoding"), ",") {
		coding, params, _ := strings.Cut(part, ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		q, ok := strings.CutPrefix(strings.ReplaceAll(params, " ", ""), "q=")
		if !ok {
			return true
		}
		v, err := strconv.ParseFloat(q, 64)
		return err == nil && v > 0
	}
	return false
}
