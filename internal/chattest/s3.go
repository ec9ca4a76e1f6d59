package chattest

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// S3 is an in-process S3-compatible server (gofakes3, objects in memory)
// on a loopback port, for tests of the S3 blob store.
type S3 struct {
	Endpoint string // host:port, plain HTTP
	backend  *s3mem.Backend
	srv      *httptest.Server
}

// StartS3 starts a fake S3 server with the given buckets until t ends.
func StartS3(t testing.TB, buckets ...string) *S3 {
	t.Helper()
	backend := s3mem.New()
	for _, b := range buckets {
		if err := backend.CreateBucket(b); err != nil {
			t.Fatalf("create bucket %s: %v", b, err)
		}
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(srv.Close)
	return &S3{Endpoint: strings.TrimPrefix(srv.URL, "http://"), backend: backend, srv: srv}
}

// URL returns the s3:// URL of bucket (and prefix, "" for none) on this
// server, as --blob-store takes it.
func (s *S3) URL(bucket, prefix string) string {
	u := "s3://" + bucket
	if prefix != "" {
		u += "/" + prefix
	}
	return u + "?endpoint=" + s.Endpoint + "&secure=false&path_style=true&region=us-east-1"
}

// Keys returns the names of the objects in bucket, in order.
func (s *S3) Keys(t testing.TB, bucket string) []string {
	t.Helper()
	list, err := s.backend.ListBucket(bucket, nil, gofakes3.ListBucketPage{})
	if err != nil {
		t.Fatalf("list %s: %v", bucket, err)
	}
	var out []string
	for _, c := range list.Contents {
		out = append(out, c.Key)
	}
	return out
}

// Close stops the server: later requests fail as with an unreachable store.
func (s *S3) Close() { s.srv.Close() }
