package chattest

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"testing"
)

// SecretNote is the text the metadata of JPEGWithGPS and PNGWithMetadata
// carries (an EXIF image description, a PNG text chunk): a stored file
// that still contains it was not cleaned.
const SecretNote = "secret-location-note"

// halves returns a w×h image whose left half is red and right half blue.
func halves(w, h int) image.Image {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := color.NRGBA{R: 220, A: 255}
			if x >= w/2 {
				c = color.NRGBA{B: 220, A: 255}
			}
			img.SetNRGBA(x, y, c)
		}
	}
	return img
}

// exifTIFF returns a big-endian TIFF structure as EXIF carries it: IFD0
// with an image description (SecretNote), the orientation and a pointer
// to a GPS IFD holding latitude 48°51'29.99" N.
func exifTIFF(orientation uint16) []byte {
	var b bytes.Buffer
	be := binary.BigEndian
	w16 := func(v uint16) { _ = binary.Write(&b, be, v) }
	w32 := func(v uint32) { _ = binary.Write(&b, be, v) }
	desc := SecretNote + "\x00"
	const ifd0 = 8
	const descAt = ifd0 + 2 + 3*12 + 4 // 50
	gpsAt := uint32(descAt + len(desc))
	gpsAt += gpsAt % 2
	latAt := gpsAt + 2 + 2*12 + 4
	b.WriteString("MM")
	w16(42)
	w32(ifd0)
	w16(3)
	w16(0x010E) // ImageDescription, ASCII
	w16(2)
	w32(uint32(len(desc)))
	w32(descAt)
	w16(0x0112) // Orientation, SHORT, inline
	w16(3)
	w32(1)
	w16(orientation)
	w16(0)
	w16(0x8825) // GPSInfo IFD pointer, LONG
	w16(4)
	w32(1)
	w32(gpsAt)
	w32(0) // no next IFD
	b.WriteString(desc)
	for uint32(b.Len()) < gpsAt {
		b.WriteByte(0)
	}
	w16(2)
	w16(0x0001) // GPSLatitudeRef, ASCII "N"
	w16(2)
	w32(2)
	b.WriteString("N\x00\x00\x00")
	w16(0x0002) // GPSLatitude, 3 RATIONALs
	w16(5)
	w32(3)
	w32(latAt)
	w32(0)
	for _, v := range []uint32{48, 1, 51, 1, 2999, 100} {
		w32(v)
	}
	return b.Bytes()
}

// JPEGWithGPS returns a w×h JPEG (left half red, right half blue) with an
// APP1 EXIF segment, written byte by byte, that holds SecretNote, the
// EXIF orientation (1 = upright; 6 = to be turned 90° clockwise) and a
// GPS position.
func JPEGWithGPS(t testing.TB, w, h int, orientation uint16) []byte {
	t.Helper()
	var enc bytes.Buffer
	if err := jpeg.Encode(&enc, halves(w, h), &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	payload := append([]byte("Exif\x00\x00"), exifTIFF(orientation)...)
	seg := []byte{0xFF, 0xE1, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(len(payload)+2))
	seg = append(seg, payload...)
	raw := enc.Bytes()
	out := append([]byte{}, raw[:2]...) // SOI
	out = append(out, seg...)
	return append(out, raw[2:]...)
}

// pngChunk encodes one PNG chunk.
func pngChunk(typ string, data []byte) []byte {
	out := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	out = append(out, typ...)
	out = append(out, data...)
	return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(append([]byte(typ), data...)))
}

// PNGWithMetadata returns a w×h PNG (left half red, right half blue) with a
// tEXt chunk holding SecretNote and an eXIf chunk with a GPS position.
func PNGWithMetadata(t testing.TB, w, h int) []byte {
	t.Helper()
	var enc bytes.Buffer
	if err := png.Encode(&enc, halves(w, h)); err != nil {
		t.Fatal(err)
	}
	raw := enc.Bytes()
	const afterIHDR = 8 + 4 + 4 + 13 + 4
	out := append([]byte{}, raw[:afterIHDR]...)
	out = append(out, pngChunk("tEXt", []byte("Comment\x00"+SecretNote))...)
	out = append(out, pngChunk("eXIf", exifTIFF(1))...)
	return append(out, raw[afterIHDR:]...)
}
