package media_test

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/natter-chat/natter/internal/media"
)

// photoJPEG returns a w×h JPEG at quality 90 (what Clean stores) whose
// pixels are smooth gradients with noise, so that it compresses and
// decodes like a photograph rather than like a flat colour.
func photoJPEG(b *testing.B, w, h int) []byte {
	b.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	rng := rand.New(rand.NewPCG(uint64(w), uint64(h)))
	for y := range h {
		for x := range w {
			n := rng.IntN(24)
			img.SetRGBA(x, y, color.RGBA{
				R: uint8((x*255/w + n) % 256),
				G: uint8((y*255/h + n) % 256),
				B: uint8(((x+y)*255/(w+h) + n) % 256),
				A: 255,
			})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

var benchSizes = []struct{ w, h int }{{1920, 1080}, {4000, 3000}}

// BenchmarkThumbnail measures thumbnails of cleaned JPEG photos: decode,
// scale to 320 px, encode. Results are in thumbs/s (one core: the
// server makes thumbnails on background workers).
func BenchmarkThumbnail(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(fmt.Sprintf("jpeg=%dx%d", s.w, s.h), func(b *testing.B) {
			src := photoJPEG(b, s.w, s.h)
			b.SetBytes(int64(len(src)))
			b.ResetTimer()
			for b.Loop() {
				if _, err := media.Thumbnail(io.Discard, bytes.NewReader(src), media.JPEG); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "thumbs/s")
		})
	}
}

// BenchmarkClean measures the metadata stripping of an uploaded JPEG
// photo (decode, orient, re-encode at quality 90), which an image upload
// waits for.
func BenchmarkClean(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(fmt.Sprintf("jpeg=%dx%d", s.w, s.h), func(b *testing.B) {
			src := photoJPEG(b, s.w, s.h)
			b.SetBytes(int64(len(src)))
			b.ResetTimer()
			for b.Loop() {
				if _, _, err := media.Clean(io.Discard, bytes.NewReader(src), media.JPEG); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "images/s")
		})
	}
}
