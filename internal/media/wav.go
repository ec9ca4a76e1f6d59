package media

import (
	"encoding/binary"
	"io"
)

// WAV is the content type of RIFF WAVE audio.
const WAV = "audio/wav"

// probeWAV reads a RIFF WAVE file: the fmt chunk gives the sample rate
// and bytes per second, the data chunk's size the duration.
func probeWAV(r io.ReaderAt, size int64) (AV, error) {
	h, err := readAt(r, size, 0, int(min(size, 12)))
	if err != nil {
		return AV{}, err
	}
	if len(h) < 12 || string(h[:4]) != "RIFF" || string(h[8:12]) != "WAVE" {
		return AV{}, malformed("no RIFF WAVE header")
	}
	var rate, byteRate uint32
	for off, count := int64(12), 0; off+8 <= size; count++ {
		if count > maxElements {
			return AV{}, malformed("more than %d chunks", maxElements)
		}
		c, err := readAt(r, size, off, 8)
		if err != nil {
			return AV{}, err
		}
		n := int64(binary.LittleEndian.Uint32(c[4:]))
		body := off + 8
		switch string(c[:4]) {
		case "fmt ":
			if n < 16 {
				return AV{}, malformed("a %d-byte fmt chunk", n)
			}
			f, err := readAt(r, size, body, 16)
			if err != nil {
				return AV{}, err
			}
			rate, byteRate = binary.LittleEndian.Uint32(f[4:]), binary.LittleEndian.Uint32(f[8:])
			if rate == 0 || byteRate == 0 {
				return AV{}, malformed("a fmt chunk with a zero rate")
			}
		case "data":
			if byteRate == 0 {
				return AV{}, malformed("a data chunk before the fmt chunk")
			}
			if n == 0xFFFFFFFF || body+n > size { // streamed or cut short: count what is there
				n = size - body
			}
			d, err := scaled(uint64(n), uint64(byteRate))
			return AV{Duration: d, SampleRate: int(rate)}, err
		}
		off = body + n + n&1 // chunks are padded to an even size
	}
	return AV{}, malformed("no data chunk")
}
