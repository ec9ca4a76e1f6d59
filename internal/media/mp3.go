package media

import (
	"encoding/binary"
	"io"
	"time"
)

// MPEG audio layer III bitrates (kbit/s) by bitrate index, for MPEG-1 and
// for MPEG-2 and 2.5; sample rates (Hz) by version and rate index.
var (
	mp3Bitrates = [2][16]int{
		{0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0},
		{0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0},
	}
	mp3Rates = map[byte][3]int{3: {44100, 48000, 32000}, 2: {22050, 24000, 16000}, 0: {11025, 12000, 8000}}
)

// mp3Frame is a parsed MPEG audio layer III frame header.
type mp3Frame struct {
	mpeg1      bool
	mono       bool
	bitrate    int // bit/s
	sampleRate int
	length     int // bytes of the whole frame
}

func parseMP3Frame(h []byte) (mp3Frame, bool) {
	if len(h) < 4 || !isMP3Frame(h) {
		return mp3Frame{}, false
	}
	version := (h[1] >> 3) & 3 // 3 = MPEG-1, 2 = MPEG-2, 0 = MPEG-2.5
	f := mp3Frame{mpeg1: version == 3, mono: h[3]>>6 == 3}
	table := 1
	if f.mpeg1 {
		table = 0
	}
	f.bitrate = mp3Bitrates[table][h[2]>>4] * 1000
	f.sampleRate = mp3Rates[version][(h[2]>>2)&3]
	padding := int(h[2]>>1) & 1
	if f.mpeg1 {
		f.length = 144*f.bitrate/f.sampleRate + padding
	} else {
		f.length = 72*f.bitrate/f.sampleRate + padding
	}
	return f, f.bitrate > 0 && f.sampleRate > 0 && f.length > 4
}

// samples is the number of samples per frame.
func (f mp3Frame) samples() uint64 {
	if f.mpeg1 {
		return 1152
	}
	return 576
}

// probeMP3 reads an MP3 file: it skips an ID3v2 tag, finds the first
// frame and takes the frame count of its Xing, Info or VBRI header; a file
// without one is taken to be constant bitrate, its duration estimated
// from its size.
func probeMP3(r io.ReaderAt, size int64) (AV, error) {
	start := int64(0)
	if h, err := readAt(r, size, 0, int(min(size, 10))); err == nil && len(h) == 10 && string(h[:3]) == "ID3" {
		for _, c := range h[6:10] {
			if c >= 0x80 {
				return AV{}, malformed("a bad ID3 tag size")
			}
		}
		n := int64(h[6])<<21 | int64(h[7])<<14 | int64(h[8])<<7 | int64(h[9])
		start = 10 + n
		if h[5]&0x10 != 0 { // a footer follows the tag
			start += 10
		}
	}
	if start >= size {
		return AV{}, malformed("no audio after the ID3 tag")
	}
	buf, err := readAt(r, size, start, int(min(size-start, mp3ScanBytes)))
	if err != nil {
		return AV{}, err
	}
	for i := 0; i+4 <= len(buf); i++ {
		f, ok := parseMP3Frame(buf[i:])
		if !ok {
			continue
		}
		// A real frame is followed by another (or the end of the file):
		// this tells a sync word from bytes that happen to look like one.
		if next := i + f.length; next+4 <= len(buf) {
			if _, ok := parseMP3Frame(buf[next:]); !ok {
				continue
			}
		}
		frame := buf[i:min(len(buf), i+f.length)]
		if frames, ok := mp3FrameCount(frame, f); ok {
			d, err := scaled(frames*f.samples(), uint64(f.sampleRate))
			return AV{Duration: d, SampleRate: f.sampleRate}, err
		}
		audio := size - start - int64(i)
		if tail, err := readAt(r, size, size-128, 3); err == nil && string(tail) == "TAG" && audio > 128 {
			audio -= 128 // an ID3v1 tag
		}
		d, err := scaled(uint64(audio)*8, uint64(f.bitrate))
		return AV{Duration: d.Truncate(time.Millisecond), SampleRate: f.sampleRate}, err
	}
	return AV{}, malformed("no MPEG audio frame")
}

// mp3FrameCount reads the frame count of a Xing/Info header (after the
// side information) or of a VBRI header (at offset 36) in the first frame.
func mp3FrameCount(frame []byte, f mp3Frame) (uint64, bool) {
	side := 32
	switch {
	case f.mpeg1 && f.mono:
		side = 17
	case !f.mpeg1 && !f.mono:
		side = 17
	case !f.mpeg1 && f.mono:
		side = 9
	}
	x := frame[min(len(frame), 4+side):]
	if len(x) >= 12 && (string(x[:4]) == "Xing" || string(x[:4]) == "Info") && binary.BigEndian.Uint32(x[4:])&1 != 0 {
		if n := binary.BigEndian.Uint32(x[8:]); n > 0 {
			return uint64(n), true
		}
	}
	if v := frame[min(len(frame), 36):]; len(v) >= 18 && string(v[:4]) == "VBRI" {
		if n := binary.BigEndian.Uint32(v[14:]); n > 0 {
			return uint64(n), true
		}
	}
	return 0, false
}
