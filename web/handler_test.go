package web_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/natter-chat/natter/internal/chattest"
	"github.com/natter-chat/natter/web"
)

func get(t *testing.T, h http.Handler, path string, header ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, res *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestHandler_ServesWhatIsInStatic is the check that replaces a "stale
// bundle" check: there is no build step, so every file under static/ must
// be served byte for byte (go:embed silently skips files whose names start
// with "." or "_", which would break the client).
func TestHandler_ServesWhatIsInStatic(t *testing.T) {
	h := web.Handler()
	var jsBytes int
	err := filepath.WalkDir("static", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		want, err := os.ReadFile(name)
		if err != nil {
			return err
		}
		urlPath := "/" + filepath.ToSlash(strings.TrimPrefix(name, "static"+string(filepath.Separator)))
		res := get(t, h, urlPath)
		if got := body(t, res); res.StatusCode != http.StatusOK || !bytes.Equal(got, want) {
			t.Errorf("GET %s: status %d, %d bytes; want 200 and the %d bytes of %s", urlPath, res.StatusCode, len(got), len(want), name)
		}
		if strings.HasSuffix(name, ".js") {
			jsBytes += len(want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	const budget = 200 << 10
	if jsBytes > budget {
		t.Errorf("the client's JavaScript is %d bytes; the budget for a first load is %d", jsBytes, budget)
	}
	t.Logf("JavaScript: %d bytes uncompressed", jsBytes)
}

func TestHandler_Headers(t *testing.T) {
	h := web.Handler()
	for _, tc := range []struct{ path, contentType string }{
		{"/", "text/html; charset=utf-8"},
		{"/js/main.js", "text/javascript; charset=utf-8"},
		{"/app.css", "text/css; charset=utf-8"},
		{"/favicon.svg", "image/svg+xml"},
	} {
		res := get(t, h, tc.path)
		if got := res.Header.Get("Content-Type"); got != tc.contentType {
			t.Errorf("GET %s: Content-Type %q, want %q", tc.path, got, tc.contentType)
		}
		csp := res.Header.Get("Content-Security-Policy")
		for _, directive := range []string{"default-src 'self'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "img-src 'self' data:", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, directive+";") && !strings.HasSuffix(csp, directive) {
				t.Errorf("GET %s: CSP %q lacks %q", tc.path, csp, directive)
			}
		}
		if strings.Contains(csp, "unsafe") {
			t.Errorf("GET %s: CSP %q allows something unsafe", tc.path, csp)
		}
		if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("GET %s: X-Content-Type-Options %q, want nosniff", tc.path, got)
		}
		if got := res.Header.Get("Cache-Control"); got != "no-cache" {
			t.Errorf("GET %s: Cache-Control %q, want no-cache (revalidate: names carry no hash)", tc.path, got)
		}
	}
}

func TestHandler_RevalidationAndCompression(t *testing.T) {
	h := web.Handler()
	res := get(t, h, "/js/store.js")
	etag := res.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	if res := get(t, h, "/js/store.js", "If-None-Match", etag); res.StatusCode != http.StatusNotModified {
		t.Errorf("GET with a matching If-None-Match: %d, want 304", res.StatusCode)
	}
	plain := body(t, get(t, h, "/js/store.js"))
	res = get(t, h, "/js/store.js", "Accept-Encoding", "br, gzip")
	if res.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("Accept-Encoding gzip: Content-Encoding %q", res.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	unzipped, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(unzipped, plain) {
		t.Errorf("gzipped body does not decompress to the file (err %v)", err)
	}
	if res.Header.Get("ETag") == etag {
		t.Error("the gzipped representation has the same ETag as the plain one")
	}
	if res := get(t, h, "/js/store.js", "Accept-Encoding", "gzip;q=0"); res.Header.Get("Content-Encoding") != "" {
		t.Error("gzip;q=0 still got gzip")
	}
}

func TestHandler_Routes(t *testing.T) {
	h := web.Handler()
	index := body(t, get(t, h, "/"))
	for _, path := range []string{"/c/118411810503131136", "/settings", "/index.html"} {
		res := get(t, h, path)
		if got := body(t, res); res.StatusCode != http.StatusOK || !bytes.Equal(got, index) {
			t.Errorf("GET %s: status %d; want 200 with index.html (client-side route)", path, res.StatusCode)
		}
	}
	for _, path := range []string{"/js/missing.js", "/missing.css", "/favicon.ico"} {
		if res := get(t, h, path); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: status %d; want 404 (a missing file is not the app)", path, res.StatusCode)
		}
	}
	req := httptest.NewRequest(http.MethodPost, "/", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d, want 405", rec.Code)
	}
}

// TestNode_MountsClientBelowAPI checks the wiring in a real node: the
// client at /, the API's JSON 404 for unknown /v1/ paths untouched.
func TestNode_MountsClientBelowAPI(t *testing.T) {
	n := chattest.StartNode(t, "")
	res, err := http.Get(n.URL + "/c/42")
	if err != nil {
		t.Fatal(err)
	}
	if b := body(t, res); res.StatusCode != http.StatusOK || !bytes.Contains(b, []byte(`<script type="module" src="/js/main.js">`)) {
		t.Errorf("GET /c/42: status %d, want the client's index.html", res.StatusCode)
	}
	for _, path := range []string{"/v1/nope", "/v1/conversations/1/nope"} {
		res, err := http.Get(n.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		var e struct {
			Error struct{ Code string } `json:"error"`
		}
		if err := json.Unmarshal(body(t, res), &e); err != nil || res.StatusCode != http.StatusNotFound || e.Error.Code != "not_found" {
			t.Errorf("GET %s: status %d, code %q (err %v); want the API's JSON 404", path, res.StatusCode, e.Error.Code, err)
		}
	}
	res, err = http.Get(n.URL + "/healthz")
	if err != nil || res.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz: %v %v", res.StatusCode, err)
	}
}

// TestClientSource_NeverParsesHTML keeps the rule that makes XSS
// impossible by construction: the client builds DOM nodes and sets
// textContent; nothing hands a string to the HTML parser or to eval.
func TestClientSource_NeverParsesHTML(t *testing.T) {
	banned := regexp.MustCompile(`\.innerHTML|\.outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function\(|createContextualFragment|DOMParser|setAttribute\(\s*['"]on|\.srcdoc`)
	err := filepath.WalkDir("static", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(name, ".js") {
			return err
		}
		src, err := os.ReadFile(name)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(src), "\n") {
			if m := banned.FindString(line); m != "" {
				t.Errorf("%s:%d uses %s", name, i+1, m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestImports_StandardLibraryOnly keeps package web a leaf: it serves
// files and knows nothing of the server it is mounted in.
func TestImports_StandardLibraryOnly(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep != "github.com/natter-chat/natter/web" {
			t.Errorf("package web imports %s: it must import only the standard library", dep)
		}
	}
}
