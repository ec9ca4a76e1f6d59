package media

import (
	"encoding/binary"
	"io"
	"math"
	"time"
)

// Matroska element ids (with their length marker, as written).
const (
	ebmlHeader    = 0x1A45DFA3
	ebmlDocType   = 0x4282
	mkvSegment    = 0x18538067
	mkvInfo       = 0x1549A966
	mkvTimescale  = 0x2AD7B1
	mkvDuration   = 0x4489
	mkvTracks     = 0x1654AE6B
	mkvTrackEntry = 0xAE
	mkvTrackType  = 0x83
	mkvVideo      = 0xE0
	mkvPixelW     = 0xB0
	mkvPixelH     = 0xBA
	mkvCluster    = 0x1F43B675
)

// unknownSize is an EBML size of all ones: the element runs to the end of
// its parent (live recordings write their Segment so).
const unknownSize = -1

// probeMatroska reads a WebM or Matroska file: the EBML header, then the
// Segment's Info (TimecodeScale, Duration) and Tracks (the first video
// track's PixelWidth and PixelHeight). It stops at the first Cluster: the
// media data is never read.
func probeMatroska(r io.ReaderAt, size int64) (AV, error) {
	p := &ebmlReader{r: r, size: size}
	id, n, body, err := p.header(0)
	if err != nil {
		return AV{}, err
	}
	if id != ebmlHeader || n == unknownSize || n > 4096 {
		return AV{}, malformed("no EBML header")
	}
	head, err := readAt(r, size, body, int(n))
	if err != nil {
		return AV{}, err
	}
	docType := ""
	if err := eachElement(head, func(id uint32, data []byte) error {
		if id == ebmlDocType {
			docType = string(data)
		}
		return nil
	}); err != nil {
		return AV{}, err
	}
	if docType != "webm" && docType != "matroska" {
		return AV{}, malformed("document type %q", docType)
	}
	id, n, body, err = p.header(body + n)
	if err != nil {
		return AV{}, err
	}
	if id != mkvSegment {
		return AV{}, malformed("no Segment after the EBML header")
	}
	end := size
	if n != unknownSize && body+n < size {
		end = body + n
	}
	var av AV
	scale, units := uint64(1_000_000), -1.0 // TimecodeScale defaults to 1 ms
	gotInfo, gotTracks := false, false
	for off := body; off < end && !(gotInfo && gotTracks); {
		if p.count++; p.count > maxElements {
			return AV{}, malformed("more than %d elements", maxElements)
		}
		id, n, child, err := p.header(off)
		if err != nil {
			return AV{}, err
		}
		if id == mkvCluster {
			break
		}
		if n == unknownSize || child+n > end {
			return AV{}, malformed("an element of unknown or too large size in the Segment")
		}
		switch id {
		case mkvInfo, mkvTracks:
			if n > maxReadAll {
				return AV{}, malformed("a %d-byte element", n)
			}
			data, err := readAt(r, size, child, int(n))
			if err != nil {
				return AV{}, err
			}
			if id == mkvInfo {
				gotInfo = true
				err = eachElement(data, func(id uint32, v []byte) error {
					switch id {
					case mkvTimescale:
						scale = ebmlUint(v)
					case mkvDuration:
						units = ebmlFloat(v)
					}
					return nil
				})
			} else {
				gotTracks = true
				err = tracks(data, &av)
			}
			if err != nil {
				return AV{}, err
			}
		}
		off = child + n
	}
	if !gotInfo {
		return AV{}, malformed("no Info element")
	}
	if units >= 0 {
		ns := units * float64(scale)
		if math.IsNaN(ns) || ns > float64(maxDurationMS)*1e6 {
			return AV{}, malformed("a duration of %g", units)
		}
		av.Duration = time.Duration(ns).Round(time.Millisecond)
	}
	return av, nil
}

// tracks sets av's frame size from the first video TrackEntry in data.
func tracks(data []byte, av *AV) error {
	return eachElement(data, func(id uint32, entry []byte) error {
		if id != mkvTrackEntry || av.Width != 0 {
			return nil
		}
		var kind uint64
		var w, h uint64
		err := eachElement(entry, func(id uint32, v []byte) error {
			switch id {
			case mkvTrackType:
				kind = ebmlUint(v)
			case mkvVideo:
				return eachElement(v, func(id uint32, v []byte) error {
					switch id {
					case mkvPixelW:
						w = ebmlUint(v)
					case mkvPixelH:
						h = ebmlUint(v)
					}
					return nil
				})
			}
			return nil
		})
		if err != nil {
			return err
		}
		if kind == 1 {
			if w > maxDimension || h > maxDimension {
				return malformed("a %dx%d video track", w, h)
			}
			av.Width, av.Height = int(w), int(h)
		}
		return nil
	})
}

// ebmlReader reads element headers from a file.
type ebmlReader struct {
	r     io.ReaderAt
	size  int64
	count int
}

// header reads the element header at off: its id, its size
// (unknownSize for all ones) and where its body starts.
func (p *ebmlReader) header(off int64) (id uint32, n, body int64, err error) {
	b, err := readAt(p.r, p.size, off, int(min(12, p.size-off)))
	if err != nil {
		return 0, 0, 0, err
	}
	id, idLen, ok := ebmlID(b)
	if !ok {
		return 0, 0, 0, malformed("a bad element id at %d", off)
	}
	n, sizeLen, ok := ebmlSize(b[idLen:])
	if !ok {
		return 0, 0, 0, malformed("a bad element size at %d", off)
	}
	return id, n, off + int64(idLen+sizeLen), nil
}

// eachElement calls f with every element in data (a master element's
// body, read whole), in order.
func eachElement(data []byte, f func(id uint32, body []byte) error) error {
	for count := 0; len(data) > 0; count++ {
		if count > maxElements {
			return malformed("more than %d elements", maxElements)
		}
		id, idLen, ok := ebmlID(data)
		if !ok {
			return malformed("a bad element id")
		}
		n, sizeLen, ok := ebmlSize(data[idLen:])
		if !ok || n == unknownSize || n > int64(len(data)-idLen-sizeLen) {
			return malformed("an element larger than its parent")
		}
		start := idLen + sizeLen
		if err := f(id, data[start:start+int(n)]); err != nil {
			return err
		}
		data = data[start+int(n):]
	}
	return nil
}

// ebmlID reads an element id: 1 to 4 bytes, the marker bit kept.
func ebmlID(b []byte) (uint32, int, bool) {
	if len(b) == 0 || b[0] == 0 {
		return 0, 0, false
	}
	n := 1
	for mask := byte(0x80); b[0]&mask == 0; mask >>= 1 {
		n++
	}
	if n > 4 || len(b) < n {
		return 0, 0, false
	}
	var id uint32
	for _, c := range b[:n] {
		id = id<<8 | uint32(c)
	}
	return id, n, true
}

// ebmlSize reads an element size: 1 to 8 bytes, the marker bit dropped;
// all value bits set means unknownSize.
func ebmlSize(b []byte) (int64, int, bool) {
	if len(b) == 0 || b[0] == 0 {
		return 0, 0, false
	}
	n := 1
	for mask := byte(0x80); b[0]&mask == 0; mask >>= 1 {
		n++
	}
	if len(b) < n {
		return 0, 0, false
	}
	v := uint64(b[0] & (0xFF >> n))
	all := v == uint64(0xFF>>n)
	for _, c := range b[1:n] {
		v = v<<8 | uint64(c)
		all = all && c == 0xFF
	}
	if all {
		return unknownSize, n, true
	}
	if v > math.MaxInt64/2 {
		return 0, 0, false
	}
	return int64(v), n, true
}

// ebmlUint reads an unsigned integer element of 0 to 8 bytes.
func ebmlUint(b []byte) uint64 {
	if len(b) > 8 {
		return 0
	}
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

// ebmlFloat reads a float element (4 or 8 bytes); -1 for anything else.
func ebmlFloat(b []byte) float64 {
	switch len(b) {
	case 4:
		return float64(math.Float32frombits(binary.BigEndian.Uint32(b)))
	case 8:
		return math.Float64frombits(binary.BigEndian.Uint64(b))
	}
	return -1
}
