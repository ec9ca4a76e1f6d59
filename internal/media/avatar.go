package media

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"

	"golang.org/x/image/draw"
)

// Avatar decodes the image of type t in r (at its start), turns it
// upright by its EXIF orientation, crops the centred square and returns
// it encoded once per entry of sides, each scaled to at most that many
// pixels a side (never enlarged). Only pixels are written, so no
// metadata survives. A JPEG stays a JPEG (quality 88); the other types
// become PNG, which keeps transparency. It returns the encoded images,
// their content type and their sides. Errors: ErrTooManyPixels,
// ErrCorrupt, and those of r.
func Avatar(r io.ReadSeeker, t string, sides ...int) (imgs [][]byte, contentType string, got []int, err error) {
	orientation := 1
	if t == JPEG {
		head := make([]byte, 128<<10)
		n, _ := io.ReadFull(r, head)
		orientation = jpegOrientation(head[:n])
		if _, err := r.Seek(0, io.SeekStart); err != nil {
			return nil, "", nil, err
		}
	}
	img, err := decode(r, t)
	if err != nil {
		return nil, "", nil, err
	}
	img = orient(img, orientation)
	b := img.Bounds()
	side := min(b.Dx(), b.Dy())
	square := image.Rect(0, 0, side, side).Add(b.Min).Add(image.Pt((b.Dx()-side)/2, (b.Dy()-side)/2))
	contentType = PNG
	if t == JPEG {
		contentType = JPEG
	}
	for _, want := range sides {
		n := min(side, want)
		dst := image.NewRGBA(image.Rect(0, 0, n, n))
		op := draw.Src
		if contentType == JPEG {
			// JPEG has no alpha: transparent areas (none in a JPEG
			// source, but be safe) go on white.
			draw.Draw(dst, dst.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
			op = draw.Over
		}
		draw.CatmullRom.Scale(dst, dst.Bounds(), img, square, op, nil)
		var buf bytes.Buffer
		if contentType == JPEG {
			err = jpeg.Encode(&buf, dst, &jpeg.Options{Quality: 88})
		} else {
			err = (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&buf, dst)
		}
		if err != nil {
			return nil, "", nil, err
		}
		imgs = append(imgs, buf.Bytes())
		got = append(got, n)
	}
	return imgs, contentType, got, nil
}
