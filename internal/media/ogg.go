package media

import (
	"bytes"
	"encoding/binary"
	"io"
)

// oggMaxPage is the largest Ogg page: a 27-byte header, 255 lacing values
// and 255 segments of 255 bytes.
const oggMaxPage = 27 + 255 + 255*255

// probeOgg reads an Ogg Opus or Ogg Vorbis file: the first page's
// identification header gives the sample rate (Opus always counts at
// 48 kHz, less a pre-skip), and the granule position of the stream's last
// page the number of samples.
func probeOgg(r io.ReaderAt, size int64) (AV, error) {
	first, err := readAt(r, size, 0, int(min(size, oggMaxPage)))
	if err != nil {
		return AV{}, err
	}
	serial, packet, err := oggFirstPacket(first)
	if err != nil {
		return AV{}, err
	}
	var rate, preSkip uint64
	switch {
	case len(packet) >= 19 && string(packet[:8]) == "OpusHead":
		rate, preSkip = 48000, uint64(binary.LittleEndian.Uint16(packet[10:]))
	case len(packet) >= 16 && string(packet[:7]) == "\x01vorbis":
		rate = uint64(binary.LittleEndian.Uint32(packet[12:]))
	default:
		return AV{}, malformed("neither an Opus nor a Vorbis stream")
	}
	if rate == 0 || rate > 1_000_000 {
		return AV{}, malformed("a sample rate of %d", rate)
	}
	granule, err := oggLastGranule(r, size, serial)
	if err != nil {
		return AV{}, err
	}
	av := AV{SampleRate: int(rate)}
	if granule > preSkip {
		if av.Duration, err = scaled(granule-preSkip, rate); err != nil {
			return AV{}, err
		}
	}
	return av, nil
}

// oggPage parses the page header at the start of b and returns the
// stream serial, granule position, the segment table and the header
// length; ok is false when b does not start with a whole page header.
func oggPage(b []byte) (serial uint32, granule uint64, lacing []byte, headerLen int, ok bool) {
	if len(b) < 27 || string(b[:4]) != "OggS" || b[4] != 0 {
		return 0, 0, nil, 0, false
	}
	n := int(b[26])
	if len(b) < 27+n {
		return 0, 0, nil, 0, false
	}
	return binary.LittleEndian.Uint32(b[14:]), binary.LittleEndian.Uint64(b[6:]), b[27 : 27+n], 27 + n, true
}

// oggFirstPacket returns the serial of the first page in b and its first
// packet (or as much of it as the page holds).
func oggFirstPacket(b []byte) (uint32, []byte, error) {
	serial, _, lacing, h, ok := oggPage(b)
	if !ok {
		return 0, nil, malformed("no Ogg page at the start")
	}
	n := 0
	for _, l := range lacing {
		n += int(l)
		if l < 255 {
			break
		}
	}
	if len(b) < h+n {
		return 0, nil, malformed("a truncated first Ogg page")
	}
	return serial, b[h : h+n], nil
}

// oggLastGranule returns the granule position of the last page of
// stream serial that ends a packet, looking at the file's final
// oggMaxPage bytes, then the ones before, up to maxReadAll bytes in all.
func oggLastGranule(r io.ReaderAt, size int64, serial uint32) (uint64, error) {
	for end, read := size, int64(0); end > 0 && read < maxReadAll; {
		start := max(0, end-2*oggMaxPage)
		b, err := readAt(r, size, start, int(end-start))
		if err != nil {
			return 0, err
		}
		read += end - start
		for i := bytes.LastIndex(b, []byte("OggS")); i >= 0; i = bytes.LastIndex(b[:i], []byte("OggS")) {
			s, g, _, _, ok := oggPage(b[i:])
			if ok && s == serial && g != 1<<64-1 { // all ones: no packet ends on this page
				return g, nil
			}
		}
		if start == 0 {
			break
		}
		end = start + 3 // overlap, so that a capture pattern cut in two is found
	}
	return 0, malformed("no final Ogg page")
}
