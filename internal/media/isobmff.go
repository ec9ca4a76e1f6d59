package media

import (
	"encoding/binary"
	"io"
	"time"
)

// probeISOBMFF reads an MP4, MOV or M4A file (ISO base media file
// format): the movie header moov/mvhd gives the duration, and the track
// header tkhd of the first video track (its mdia/hdlr says "vide") the
// frame size.
func probeISOBMFF(r io.ReaderAt, size int64) (AV, error) {
	p := &boxReader{r: r, size: size}
	moov, ok, err := p.find(0, size, "moov")
	if err != nil {
		return AV{}, err
	}
	if !ok {
		return AV{}, malformed("no moov box")
	}
	var av AV
	haveHeader := false
	err = p.each(moov.body, moov.end, func(b box) error {
		switch b.typ {
		case "mvhd":
			d, err := p.mvhd(b)
			if err != nil {
				return err
			}
			av.Duration, haveHeader = d, true
		case "trak":
			if av.Width != 0 {
				return nil
			}
			w, h, video, err := p.trak(b)
			if err != nil {
				return err
			}
			if video {
				av.Width, av.Height = w, h
			}
		}
		return nil
	})
	if err != nil {
		return AV{}, err
	}
	if !haveHeader {
		return AV{}, malformed("no mvhd box")
	}
	return av, nil
}

// box is one box: its type and where its body and the box end.
type box struct {
	typ       string
	body, end int64
}

// boxReader walks the boxes of a file, counting them.
type boxReader struct {
	r     io.ReaderAt
	size  int64
	count int
}

// each calls f for every box in [start, end), in order.
func (p *boxReader) each(start, end int64, f func(box) error) error {
	for off := start; off < end; {
		if p.count++; p.count > maxElements {
			return malformed("more than %d boxes", maxElements)
		}
		if end-off < 8 {
			return malformed("a truncated box header")
		}
		h, err := readAt(p.r, p.size, off, 8)
		if err != nil {
			return err
		}
		n, body := int64(binary.BigEndian.Uint32(h)), off+8
		switch n {
		case 0: // the box runs to the end of its parent
			n = end - off
		case 1: // a 64-bit size follows the type
			ext, err := readAt(p.r, p.size, off+8, 8)
			if err != nil {
				return err
			}
			big := binary.BigEndian.Uint64(ext)
			if big > uint64(end-off) {
				return malformed("a box larger than its parent")
			}
			n, body = int64(big), off+16
		}
		if n < body-off || n > end-off {
			return malformed("a box of size %d at %d", n, off)
		}
		if err := f(box{typ: string(h[4:8]), body: body, end: off + n}); err != nil {
			return err
		}
		off += n
	}
	return nil
}

// find returns the first box of type typ in [start, end).
func (p *boxReader) find(start, end int64, typ string) (box, bool, error) {
	var found box
	ok := false
	err := p.each(start, end, func(b box) error {
		if b.typ == typ {
			found, ok = b, true
			return errStop
		}
		return nil
	})
	if err == errStop {
		err = nil
	}
	return found, ok, err
}

// mvhd reads a movie header box, version 0 (32-bit times) or 1 (64-bit).
func (p *boxReader) mvhd(b box) (time.Duration, error) {
	h, err := readAt(p.r, p.size, b.body, min(int(b.end-b.body), 32))
	if err != nil {
		return 0, err
	}
	var scale, units uint64
	switch {
	case len(h) >= 20 && h[0] == 0:
		scale, units = uint64(binary.BigEndian.Uint32(h[12:])), uint64(binary.BigEndian.Uint32(h[16:]))
		if units == 0xFFFFFFFF {
			return 0, nil // unknown
		}
	case len(h) >= 32 && h[0] == 1:
		scale, units = uint64(binary.BigEndian.Uint32(h[20:])), binary.BigEndian.Uint64(h[24:])
		if units == 1<<64-1 {
			return 0, nil
		}
	default:
		return 0, malformed("an mvhd box of %d bytes", len(h))
	}
	return scaled(units, scale)
}

// trak reads a track: the frame size from its tkhd and whether its
// handler (mdia/hdlr) is video.
func (p *boxReader) trak(b box) (w, h int, video bool, err error) {
	err = p.each(b.body, b.end, func(c box) error {
		switch c.typ {
		case "tkhd":
			w, h, err = p.tkhd(c)
			return err
		case "mdia":
			hdlr, ok, err := p.find(c.body, c.end, "hdlr")
			if err != nil || !ok {
				return err
			}
			// version/flags (4), pre_defined (4), handler_type (4)
			t, err := readAt(p.r, p.size, hdlr.body, min(int(hdlr.end-hdlr.body), 12))
			if err != nil {
				return err
			}
			video = len(t) == 12 && string(t[8:12]) == "vide"
		}
		return nil
	})
	return w, h, video, err
}

// tkhd reads the width and height (16.16 fixed point) of a track header,
// version 0 (84 bytes) or 1 (96 bytes).
func (p *boxReader) tkhd(b box) (int, int, error) {
	h, err := readAt(p.r, p.size, b.body, min(int(b.end-b.body), 96))
	if err != nil {
		return 0, 0, err
	}
	at := 0
	switch {
	case len(h) >= 84 && h[0] == 0:
		at = 76
	case len(h) >= 96 && h[0] == 1:
		at = 88
	default:
		return 0, 0, malformed("a tkhd box of %d bytes", len(h))
	}
	return int(binary.BigEndian.Uint32(h[at:]) >> 16), int(binary.BigEndian.Uint32(h[at+4:]) >> 16), nil
}
