package s3blob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/natter-chat/natter/internal/chat"
)

var _ chat.BlobStore = (*Store)(nil)

// Config says where the objects live. Zero values are documented per
// field.
type Config struct {
	Endpoint string // host[:port] of the S3 API; empty means s3.amazonaws.com
	Bucket   string // must exist; Open checks it
	// Prefix is put before every key (a "folder" in the bucket), so hot
	// and cold tiers or several deployments can share a bucket. Empty
	// means none; otherwise it should end with "/".
	Prefix string
	Region string // empty means the client asks the server (us-east-1 for most S3-compatible servers)
	// AccessKey and SecretKey sign requests; both empty means anonymous
	// requests (a public bucket, or credentials the proxy adds).
	AccessKey, SecretKey string
	Insecure             bool // plain HTTP instead of HTTPS (a server on a private network or loopback)
	// PathStyle chooses how the bucket is addressed: "" lets the client
	// decide from the endpoint, "true" sends endpoint/bucket/key (MinIO
	// and most self-hosted servers), "false" sends bucket.endpoint/key.
	PathStyle string
	// ScratchDir holds what Put spools to learn the size of a large blob
	// read from a stream. Empty means the system's temporary directory.
	ScratchDir string
	// Transport carries the requests; nil means http.DefaultTransport's
	// settings.
	Transport http.RoundTripper
}

// ParseURL reads a Config from
// s3://bucket[/prefix]?endpoint=host:port&region=r&secure=false&path_style=true.
// Credentials are never part of the URL: set AccessKey and SecretKey
// separately.
func ParseURL(raw string) (Config, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "s3" || u.Host == "" || u.User != nil {
		return Config{}, fmt.Errorf("s3 URL %q: want s3://bucket[/prefix]?endpoint=host:port (credentials go in the environment, not the URL)", redact(raw))
	}
	c := Config{Bucket: u.Host, Prefix: strings.Trim(u.Path, "/")}
	if c.Prefix != "" {
		if !chat.ValidBlobKey(c.Prefix) {
			return Config{}, fmt.Errorf("s3 URL %q: the prefix may hold only a-z, 0-9, /, _, . and -", raw)
		}
		c.Prefix += "/"
	}
	q := u.Query()
	for k := range q {
		switch k {
		case "endpoint", "region", "secure", "path_style":
		default:
			return Config{}, fmt.Errorf("s3 URL %q: unknown parameter %q (known: endpoint, region, secure, path_style)", raw, k)
		}
	}
	c.Endpoint, c.Region = q.Get("endpoint"), q.Get("region")
	if v := q.Get("secure"); v != "" {
		secure, err := strconv.ParseBool(v)
		if err != nil {
			return Config{}, fmt.Errorf("s3 URL %q: secure must be true or false", raw)
		}
		c.Insecure = !secure
	}
	if v := q.Get("path_style"); v != "" {
		ps, err := strconv.ParseBool(v)
		if err != nil {
			return Config{}, fmt.Errorf("s3 URL %q: path_style must be true or false", raw)
		}
		c.PathStyle = strconv.FormatBool(ps)
	}
	return c, nil
}

// redact drops anything that looks like credentials from a URL shown in an error.
func redact(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		u.User = url.User("REDACTED")
		return u.String()
	}
	if _, after, ok := strings.Cut(raw, "@"); ok {
		return "…@" + after
	}
	return raw
}

// Store is a chat.BlobStore in a bucket of an S3-compatible server. It
// is safe for concurrent use.
type Store struct {
	c       *minio.Client
	bucket  string
	prefix  string
	scratch string
	where   string // for String: endpoint, bucket and prefix, never credentials
}

// Open connects to the server and checks that the bucket exists (Natter
// never creates buckets: their policies are the operator's). It fails
// when the server cannot be reached or refuses the credentials.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("s3: no bucket")
	}
	if cfg.Endpoint == "" {
		cfg.Endpoint = "s3.amazonaws.com"
	}
	if (cfg.AccessKey == "") != (cfg.SecretKey == "") {
		return nil, errors.New("s3: set both the access key and the secret key, or neither")
	}
	lookup := minio.BucketLookupAuto
	switch cfg.PathStyle {
	case "true":
		lookup = minio.BucketLookupPath
	case "false":
		lookup = minio.BucketLookupDNS
	}
	var creds *credentials.Credentials
	if cfg.AccessKey != "" {
		creds = credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, "")
	} else {
		creds = credentials.New(&credentials.Static{Value: credentials.Value{SignerType: credentials.SignatureAnonymous}})
	}
	c, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds: creds, Secure: !cfg.Insecure, Region: cfg.Region, BucketLookup: lookup, Transport: cfg.Transport,
		MaxRetries: 3, // a store that is down should fail a download in seconds, not minutes
	})
	if err != nil {
		return nil, fmt.Errorf("s3: endpoint %q: %w", cfg.Endpoint, err)
	}
	scheme := "https"
	if cfg.Insecure {
		scheme = "http"
	}
	s := &Store{c: c, bucket: cfg.Bucket, prefix: cfg.Prefix, scratch: cfg.ScratchDir,
		where: fmt.Sprintf("s3://%s/%s at %s://%s", cfg.Bucket, cfg.Prefix, scheme, cfg.Endpoint)}
	if s.scratch == "" {
		s.scratch = os.TempDir()
	}
	ok, err := c.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("s3: %s: %w", s.where, err)
	}
	if !ok {
		return nil, fmt.Errorf("s3: %s: the bucket does not exist; create it first", s.where)
	}
	return s, nil
}

// String names the bucket and endpoint, without credentials.
func (s *Store) String() string { return s.where }

// LogValue implements slog.LogValuer.
func (s *Store) LogValue() slog.Value { return slog.StringValue(s.where) }

// Close releases nothing: the client keeps no state worth closing. It is
// here so that Store closes like blob.Disk.
func (s *Store) Close() error { return nil }

func badKey(op, key string) error {
	return &chat.Error{Code: chat.CodeInvalidArgument, Message: "invalid blob key", Op: op, Err: fmt.Errorf("key %q", key)}
}

// classify turns a client error into the BlobStore contract: an absent
// object is CodeNotFound; everything else (network, credentials, a
// missing bucket, throttling) is CodeUnavailable.
func classify(op string, err error) error {
	resp := minio.ToErrorResponse(err)
	if resp.Code == "NoSuchKey" || resp.StatusCode == http.StatusNotFound && resp.Code != "NoSuchBucket" {
		return &chat.Error{Code: chat.CodeNotFound, Message: "no such blob", Op: op}
	}
	return chat.Unavailable(op, err)
}

// Put implements chat.BlobStore. The object is written with its size
// known up front: a file or an in-memory reader tells it, and any other
// stream is buffered (up to 1 MiB) or spooled to ScratchDir first, so a
// blob larger than a part never sits in memory. A failed or cancelled
// Put leaves the old object.
func (s *Store) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	const op = "s3blob.Put"
	if !chat.ValidBlobKey(key) {
		return 0, badKey(op, key)
	}
	body, size, done, err := s.sized(ctx, r)
	if err != nil {
		return 0, chat.Unavailable(op, err)
	}
	defer done()
	info, err := s.c.PutObject(ctx, s.bucket, s.prefix+key, body, size, minio.PutObjectOptions{ContentType: "application/octet-stream"})
	if err != nil {
		return 0, classify(op, err)
	}
	if info.Size != size {
		return 0, chat.Unavailable(op, fmt.Errorf("stored %d bytes of %d", info.Size, size))
	}
	return size, nil
}

// memoryPut is the largest stream Put buffers in memory.
const memoryPut = 1 << 20

// sized returns r's content with its length; done releases what it took.
func (s *Store) sized(ctx context.Context, r io.Reader) (io.Reader, int64, func(), error) {
	nothing := func() {}
	switch v := r.(type) {
	case *bytes.Reader:
		return v, int64(v.Len()), nothing, nil
	case *strings.Reader:
		return v, int64(v.Len()), nothing, nil
	case *os.File:
		if st, err := v.Stat(); err == nil && st.Mode().IsRegular() {
			if at, err := v.Seek(0, io.SeekCurrent); err == nil && at == 0 {
				return v, st.Size(), nothing, nil // a ReaderAt: large files go up in parts without buffering
			}
		}
	}
	head, err := io.ReadAll(io.LimitReader(ctxReader{ctx, r}, memoryPut+1))
	if err != nil {
		return nil, 0, nil, err
	}
	if len(head) <= memoryPut {
		return bytes.NewReader(head), int64(len(head)), nothing, nil
	}
	f, err := os.CreateTemp(s.scratch, "natter-s3put-*")
	if err != nil {
		return nil, 0, nil, err
	}
	done := func() { f.Close(); os.Remove(f.Name()) }
	n, err := io.Copy(f, io.MultiReader(bytes.NewReader(head), ctxReader{ctx, r}))
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		done()
		return nil, 0, nil, err
	}
	return f, n, done, nil
}

// Open implements chat.BlobStore. The returned reader fetches what is
// read: a Seek followed by a Read asks the server for that range, as
// http.ServeContent does for Range requests. ctx bounds the reads too.
func (s *Store) Open(ctx context.Context, key string) (io.ReadSeekCloser, int64, time.Time, error) {
	const op = "s3blob.Open"
	if !chat.ValidBlobKey(key) {
		return nil, 0, time.Time{}, badKey(op, key)
	}
	obj, err := s.c.GetObject(ctx, s.bucket, s.prefix+key, minio.GetObjectOptions{})
	if err != nil {
		return nil, 0, time.Time{}, classify(op, err)
	}
	st, err := obj.Stat()
	if err != nil {
		obj.Close()
		return nil, 0, time.Time{}, classify(op, err)
	}
	return obj, st.Size, st.LastModified, nil
}

// Delete implements chat.BlobStore.
func (s *Store) Delete(ctx context.Context, key string) error {
	const op = "s3blob.Delete"
	if !chat.ValidBlobKey(key) {
		return badKey(op, key)
	}
	err := s.c.RemoveObject(ctx, s.bucket, s.prefix+key, minio.RemoveObjectOptions{})
	if err != nil && !chat.IsCode(classify(op, err), chat.CodeNotFound) {
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
