package media_test

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/jpeg"
	"image/png"
	"strings"
	"testing"

	"github.com/natter-chat/natter/internal/chattest"
	"github.com/natter-chat/natter/internal/media"
)

func TestDetect(t *testing.T) {
	jpg := chattest.JPEGWithGPS(t, 8, 8, 1)
	pngb := chattest.PNGWithMetadata(t, 8, 8)
	for _, c := range []struct {
		name string
		head []byte
		want string
	}{
		{"jpeg", jpg, media.JPEG},
		{"png", pngb, media.PNG},
		{"gif", []byte("GIF89a\x01\x00\x01\x00"), media.GIF},
		{"webp", []byte("RIFF\x10\x00\x00\x00WEBPVP8 "), media.WebP},
		{"mp4", []byte("\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"), media.MP4},
		{"m4a", []byte("\x00\x00\x00\x18ftypM4A \x00\x00\x02\x00isomiso2"), media.M4A},
		{"webm", []byte("\x1A\x45\xDF\xA3\x9f\x42\x86\x81\x01"), media.WebM},
		{"ogg opus", []byte("OggS\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x01\x02\x03\x04\x00\x00\x00\x00\x00\x00\x00\x00\x01\x13OpusHead"), media.Ogg},
		{"ogg theora", []byte("OggS\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x01\x02\x03\x04\x00\x00\x00\x00\x00\x00\x00\x00\x01\x2a\x80theora"), ""},
		{"mp3 with id3", []byte("ID3\x03\x00\x00\x00\x00\x00\x00"), media.MP3},
		{"mp3 frame", []byte{0xFF, 0xFB, 0x90, 0x64, 0, 0}, media.MP3},
		{"pdf", []byte("%PDF-1.7\n"), media.PDF},
		{"zip", []byte("PK\x03\x04\x14\x00"), media.Zip},
		{"text", []byte("just some words\n"), media.Text},
		{"html", []byte("  <!DOCTYPE html><html><script>alert(1)</script>"), ""},
		{"svg", []byte(`<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>`), ""},
		{"elf", []byte("\x7fELF\x02\x01\x01\x00\x00\x00"), ""},
		{"windows exe", []byte("MZ\x90\x00\x03\x00\x00\x00"), ""},
		{"empty", nil, ""},
	} {
		if got := media.Detect(c.head); got != c.want {
			t.Errorf("Detect(%s) = %q, want %q", c.name, got, c.want)
		}
	}
}

func TestClean_JPEGIsTurnedUprightWithoutMetadata(t *testing.T) {
	src := chattest.JPEGWithGPS(t, 80, 40, 6)
	var out bytes.Buffer
	size, cleaned, err := media.Clean(&out, bytes.NewReader(src), media.JPEG)
	if err != nil || !cleaned {
		t.Fatalf("Clean = %v, %v", cleaned, err)
	}
	if size != (media.Size{Width: 40, Height: 80}) {
		t.Fatalf("size %+v, want 40×80 (turned by orientation 6)", size)
	}
	if bytes.Contains(out.Bytes(), []byte("Exif")) || bytes.Contains(out.Bytes(), []byte(chattest.SecretNote)) {
		t.Fatal("the cleaned JPEG still carries EXIF")
	}
	img, err := jpeg.Decode(&out)
	if err != nil {
		t.Fatal(err)
	}
	// The left (red) half of the sideways picture is now on top.
	if r, _, b, _ := img.At(20, 10).RGBA(); r < b {
		t.Errorf("top of the upright image is not red")
	}
	if r, _, b, _ := img.At(20, 70).RGBA(); b < r {
		t.Errorf("bottom of the upright image is not blue")
	}
}

func TestClean_PNGLosesItsChunks(t *testing.T) {
	var out bytes.Buffer
	size, _, err := media.Clean(&out, bytes.NewReader(chattest.PNGWithMetadata(t, 30, 20)), media.PNG)
	if err != nil || size != (media.Size{Width: 30, Height: 20}) {
		t.Fatalf("Clean = %+v, %v", size, err)
	}
	for _, s := range []string{"tEXt", "eXIf", chattest.SecretNote} {
		if strings.Contains(out.String(), s) {
			t.Errorf("the cleaned PNG still holds %q", s)
		}
	}
	if _, err := png.Decode(&out); err != nil {
		t.Fatal(err)
	}
}

func TestClean_RefusesDecompressionBombsAndGarbage(t *testing.T) {
	var bomb bytes.Buffer
	// A valid header claiming 10,000 × 10,000 pixels.
	_ = png.Encode(&bomb, image.NewGray(image.Rect(0, 0, 1, 1)))
	b := bomb.Bytes()
	copy(b[16:24], []byte{0, 0, 0x27, 0x10, 0, 0, 0x27, 0x10})
	binary.BigEndian.PutUint32(b[29:33], crc32.ChecksumIEEE(b[12:29]))
	if _, _, err := media.Clean(&bytes.Buffer{}, bytes.NewReader(b), media.PNG); err != media.ErrTooManyPixels {
		t.Errorf("a 100-megapixel header gave %v, want ErrTooManyPixels", err)
	}
	if _, _, err := media.Clean(&bytes.Buffer{}, strings.NewReader("\xFF\xD8\xFF garbage"), media.JPEG); err == nil {
		t.Error("garbage JPEG was accepted")
	}
}

func TestThumbnail_FitsAndKeepsTheAspect(t *testing.T) {
	for _, c := range []struct{ w, h, tw, th int }{{1000, 500, 320, 160}, {300, 900, 107, 320}, {100, 50, 100, 50}} {
		var src bytes.Buffer
		_ = png.Encode(&src, image.NewRGBA(image.Rect(0, 0, c.w, c.h)))
		var out bytes.Buffer
		size, err := media.Thumbnail(&out, bytes.NewReader(src.Bytes()), media.PNG)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := jpeg.DecodeConfig(&out)
		if err != nil {
			t.Fatal(err)
		}
		if size != (media.Size{Width: c.tw, Height: c.th}) || cfg.Width != c.tw || cfg.Height != c.th {
			t.Errorf("%d×%d: thumbnail %+v (file %d×%d), want %d×%d", c.w, c.h, size, cfg.Width, cfg.Height, c.tw, c.th)
		}
	}
}
