package media

import (
	"bufio"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"

	"golang.org/x/image/draw"
	"golang.org/x/image/webp"
)

// MaxPixels bounds the images that are decoded (about 50 megapixels):
// bigger ones are refused before any pixel is read.
const MaxPixels = 50_000_000

// ThumbnailSide is the longest side of a thumbnail, in pixels.
const ThumbnailSide = 320

// ErrTooManyPixels is returned for an image larger than MaxPixels.
var ErrTooManyPixels = errors.New("media: image has too many pixels")

// ErrCorrupt is returned for an image whose bytes cannot be decoded.
var ErrCorrupt = errors.New("media: image cannot be decoded")

// Size is an image's dimensions in pixels.
type Size struct{ Width, Height int }

// decodeConfig reads an image's dimensions from its header.
func decodeConfig(r io.Reader, t string) (image.Config, error) {
	var cfg image.Config
	var err error
	switch t {
	case JPEG:
		cfg, err = jpeg.DecodeConfig(r)
	case PNG:
		cfg, err = png.DecodeConfig(r)
	case GIF:
		cfg, err = gif.DecodeConfig(r)
	case WebP:
		cfg, err = webp.DecodeConfig(r)
	default:
		return image.Config{}, fmt.Errorf("media: %s is not an image type", t)
	}
	if err != nil {
		return image.Config{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return image.Config{}, ErrCorrupt
	}
	if int64(cfg.Width)*int64(cfg.Height) > MaxPixels {
		return image.Config{}, ErrTooManyPixels
	}
	return cfg, nil
}

// decode decodes the first frame of an image of type t from r, which must
// be at its start; seeks back to the start after checking the size.
func decode(r io.ReadSeeker, t string) (image.Image, error) {
	if _, err := decodeConfig(bufio.NewReader(r), t); err != nil {
		return nil, err
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	var img image.Image
	var err error
	br := bufio.NewReader(r)
	switch t {
	case JPEG:
		img, err = jpeg.Decode(br)
	case PNG:
		img, err = png.Decode(br)
	case GIF:
		img, err = gif.Decode(br)
	case WebP:
		img, err = webp.Decode(br)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return img, nil
}

// Clean writes to w a copy of the image of type t in r with no metadata
// and returns its size. JPEG is decoded, turned upright by its EXIF
// orientation, and re-encoded (quality 90); PNG is decoded and
// re-encoded: the encoders write pixels only, so EXIF, GPS, XMP, ICC and
// text chunks are all gone. GIF and WebP are decoded (to check them) and
// copied unchanged (cleaned=false). r must be at the start of the file.
// Errors: ErrTooManyPixels, ErrCorrupt, and those of r and w.
func Clean(w io.Writer, r io.ReadSeeker, t string) (size Size, cleaned bool, err error) {
	switch t {
	case JPEG, PNG:
	case GIF, WebP:
		// Decoded once to prove the pixels are readable (thumbnails need
		// them), then stored as uploaded.
		img, err := decode(r, t)
		if err != nil {
			return Size{}, false, err
		}
		if _, err := r.Seek(0, io.SeekStart); err != nil {
			return Size{}, false, err
		}
		_, err = io.Copy(w, r)
		b := img.Bounds()
		return Size{b.Dx(), b.Dy()}, false, err
	default:
		return Size{}, false, fmt.Errorf("media: %s is not an image type", t)
	}
	orientation := 1
	if t == JPEG {
		head := make([]byte, 128<<10)
		n, _ := io.ReadFull(r, head)
		orientation = jpegOrientation(head[:n])
		if _, err := r.Seek(0, io.SeekStart); err != nil {
			return Size{}, false, err
		}
	}
	img, err := decode(r, t)
	if err != nil {
		return Size{}, false, err
	}
	img = orient(img, orientation)
	bw := bufio.NewWriter(w)
	if t == JPEG {
		err = jpeg.Encode(bw, img, &jpeg.Options{Quality: 90})
	} else {
		err = (&png.Encoder{CompressionLevel: png.DefaultCompression}).Encode(bw, img)
	}
	if err == nil {
		err = bw.Flush()
	}
	b := img.Bounds()
	return Size{b.Dx(), b.Dy()}, true, err
}

// Thumbnail writes to w a JPEG of the image of type t in r scaled to fit
// ThumbnailSide pixels on its longest side (never enlarged), keeping its
// aspect ratio, transparent areas on white, and returns its size. r must
// be at the start of an image already cleaned by Clean (upright).
func Thumbnail(w io.Writer, r io.ReadSeeker, t string) (Size, error) {
	img, err := decode(r, t)
	if err != nil {
		return Size{}, err
	}
	src := img.Bounds()
	tw, th := fit(src.Dx(), src.Dy(), ThumbnailSide)
	// Two stages: a fast bilinear pass down to four times the target,
	// then Catmull-Rom, which is sharp but slow on big sources.
	if src.Dx() > 4*tw && src.Dy() > 4*th {
		mid := image.NewRGBA(image.Rect(0, 0, 4*tw, 4*th))
		draw.ApproxBiLinear.Scale(mid, mid.Bounds(), img, src, draw.Src, nil)
		img, src = mid, mid.Bounds()
	}
	dst := image.NewRGBA(image.Rect(0, 0, tw, th))
	draw.Draw(dst, dst.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	draw.CatmullRom.Scale(dst, dst.Bounds(), img, src, draw.Over, nil)
	bw := bufio.NewWriter(w)
	if err := jpeg.Encode(bw, dst, &jpeg.Options{Quality: 80}); err != nil {
		return Size{}, err
	}
	return Size{tw, th}, bw.Flush()
}

// fit scales w×h down so that its longest side is at most side.
func fit(w, h, side int) (int, int) {
	if w <= side && h <= side {
		return w, h
	}
	if w >= h {
		return side, max(1, (h*side+w/2)/w)
	}
	return max(1, (w*side+h/2)/h), side
}
