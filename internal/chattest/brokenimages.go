package chattest

import (
	"bytes"
	"encoding/binary"
	"image/png"
	"testing"
)

// UndecodablePNG returns a w×h PNG whose signature and header are sound
// (its type is detected and its size read) but whose pixel data (the
// IDAT chunk, written with a valid checksum) is not a zlib stream: a
// decoder fails on it. It stands for an image damaged after it passed the
// upload checks.
func UndecodablePNG(t testing.TB, w, h int) []byte {
	t.Helper()
	var enc bytes.Buffer
	if err := png.Encode(&enc, halves(w, h)); err != nil {
		t.Fatal(err)
	}
	const afterIHDR = 8 + 4 + 4 + 13 + 4
	out := append([]byte{}, enc.Bytes()[:afterIHDR]...)
	out = append(out, pngChunk("IDAT", bytes.Repeat([]byte{0xFF}, 64))...)
	return append(out, pngChunk("IEND", nil)...)
}

// HugePNG returns the start of a PNG whose header claims w×h pixels, with
// an empty IDAT: a decoder that checks the size first (media.MaxPixels)
// refuses it without reading any pixel.
func HugePNG(w, h uint32) []byte {
	ihdr := binary.BigEndian.AppendUint32(nil, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, 8, 2, 0, 0, 0) // 8-bit RGB, deflate, no filter, no interlace
	out := []byte("\x89PNG\r\n\x1a\n")
	out = append(out, pngChunk("IHDR", ihdr)...)
	out = append(out, pngChunk("IDAT", nil)...)
	return append(out, pngChunk("IEND", nil)...)
}
