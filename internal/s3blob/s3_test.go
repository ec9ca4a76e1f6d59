package s3blob_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/chattest"
	"github.com/natter-chat/natter/internal/s3blob"
)

func open(t testing.TB, url string) *s3blob.Store {
	t.Helper()
	cfg, err := s3blob.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.AccessKey, cfg.SecretKey, cfg.ScratchDir = "natter", "natter-secret", t.TempDir()
	s, err := s3blob.Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStore_Conformance(t *testing.T) {
	fake := chattest.StartS3(t, "natter")
	n := 0
	chattest.TestBlobStore(t, func(t testing.TB) chat.BlobStore {
		n++ // each subtest gets a prefix of its own, so they start empty
		return open(t, fake.URL("natter", "run"+strings.Repeat("x", n)))
	})
}

func TestStore_KeysLiveUnderThePrefix(t *testing.T) {
	fake := chattest.StartS3(t, "natter")
	s := open(t, fake.URL("natter", "cold/media"))
	if _, err := s.Put(t.Context(), "att/abc/content", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	if got := fake.Keys(t, "natter"); !slices.Equal(got, []string{"cold/media/att/abc/content"}) {
		t.Fatalf("objects %v, want the key under the prefix", got)
	}
	if bare := open(t, fake.URL("natter", "")); bare == nil {
		t.Fatal("no store")
	} else if _, _, _, err := bare.Open(t.Context(), "att/abc/content"); !chat.IsCode(err, chat.CodeNotFound) {
		t.Fatalf("a store without the prefix sees the blob: %v", err)
	}
}

func TestStore_AnUnreachableServerIsUnavailable(t *testing.T) {
	fake := chattest.StartS3(t, "natter")
	s := open(t, fake.URL("natter", ""))
	fake.Close()
	ctx := t.Context()
	if _, err := s.Put(ctx, "k", strings.NewReader("x")); !chat.IsCode(err, chat.CodeUnavailable) {
		t.Errorf("Put = %v, want unavailable", err)
	}
	if _, _, _, err := s.Open(ctx, "k"); !chat.IsCode(err, chat.CodeUnavailable) {
		t.Errorf("Open = %v, want unavailable", err)
	}
	if err := s.Delete(ctx, "k"); !chat.IsCode(err, chat.CodeUnavailable) {
		t.Errorf("Delete = %v, want unavailable", err)
	}
}

func TestOpen_RefusesAMissingBucketAndHalfCredentials(t *testing.T) {
	fake := chattest.StartS3(t, "natter")
	cfg, err := s3blob.ParseURL(fake.URL("elsewhere", ""))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s3blob.Open(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("Open(missing bucket) = %v", err)
	}
	cfg.Bucket, cfg.AccessKey = "natter", "only-the-access-key"
	if _, err := s3blob.Open(t.Context(), cfg); err == nil {
		t.Error("Open with an access key and no secret key succeeded")
	}
	cfg.SecretKey = "hunter2-secret"
	fake.Close()
	_, err = s3blob.Open(t.Context(), cfg)
	if err == nil {
		t.Fatal("Open of a stopped server succeeded")
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("the error shows the secret key: %v", err)
	}
}

func TestParseURL(t *testing.T) {
	c, err := s3blob.ParseURL("s3://media/natter/hot?endpoint=minio:9000&region=eu-west-1&secure=false&path_style=true")
	if err != nil {
		t.Fatal(err)
	}
	want := s3blob.Config{Bucket: "media", Prefix: "natter/hot/", Endpoint: "minio:9000", Region: "eu-west-1", Insecure: true, PathStyle: "true"}
	if c != want {
		t.Errorf("ParseURL = %+v, want %+v", c, want)
	}
	c, err = s3blob.ParseURL("s3://media")
	if err != nil || c != (s3blob.Config{Bucket: "media"}) {
		t.Errorf("ParseURL(bare) = %+v, %v", c, err)
	}
	for _, bad := range []string{
		"media", "http://media", "s3://", "s3://media?secure=maybe", "s3://media?path_style=2",
		"s3://media?access_key=x", "s3://media/UPPER", "s3://media/a/../b",
	} {
		if _, err := s3blob.ParseURL(bad); err == nil {
			t.Errorf("ParseURL(%q) succeeded", bad)
		}
	}
	_, err = s3blob.ParseURL("s3://AKIA:topsecret@media?endpoint=x")
	if err == nil || strings.Contains(err.Error(), "topsecret") {
		t.Errorf("ParseURL with credentials in the URL = %v; want an error that does not show them", err)
	}
	if errors.Unwrap(err) != nil && strings.Contains(errors.Unwrap(err).Error(), "topsecret") {
		t.Errorf("the wrapped error shows the secret")
	}
}
