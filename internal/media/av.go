package media

import (
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

// AV is what a video or audio file says about itself. Zero fields are
// unknown: a file may state no duration (a live WebM recording) or have
// no video track (audio, or an MP4 holding only sound).
type AV struct {
	Duration      time.Duration
	Width, Height int // pixels of the first video track
	SampleRate    int // Hz of the audio, where the format states it (Ogg, MP3, WAV)
}

// ErrNoMetadata is returned by Probe for a file whose structure cannot be
// read: truncated, garbage, or a box or element of an absurd size.
var ErrNoMetadata = errors.New("media: no readable audio/video metadata")

// Bounds of what Probe reads, so that a crafted file costs little.
const (
	maxElements   = 10_000   // boxes, EBML elements, chunks or pages looked at per file
	maxDepth      = 8        // nesting of boxes and elements
	maxReadAll    = 1 << 20  // the largest structure read whole into memory
	maxDimension  = 1 << 16  // pixels per side of a video frame
	maxDurationMS = 1 << 40  // about 35 years: a longer duration is a lie
	mp3ScanBytes  = 64 << 10 // where the first MP3 frame must start, after any ID3 tag
)

// Probe reads the duration and, for video, the frame size of the file of
// type t (one of MP4, M4A, WebM, Ogg, MP3, WAV) held in r, which has size
// bytes. It reads only the headers it needs, never more than a few
// hundred KiB whatever the file's size, and stops after a bounded number
// of structures. Errors: ErrNoMetadata (wrapped) for a malformed file, or
// an error of its own for a type it does not probe; a read error of r.
func Probe(r io.ReaderAt, size int64, t string) (AV, error) {
	if size <= 0 {
		return AV{}, fmt.Errorf("%w: empty file", ErrNoMetadata)
	}
	var av AV
	var err error
	switch t {
	case MP4, M4A:
		av, err = probeISOBMFF(r, size)
	case WebM:
		av, err = probeMatroska(r, size)
	case Ogg:
		av, err = probeOgg(r, size)
	case MP3:
		av, err = probeMP3(r, size)
	case WAV:
		av, err = probeWAV(r, size)
	default:
		return AV{}, fmt.Errorf("media: %s is not an audio or video type", t)
	}
	if err != nil {
		return AV{}, err
	}
	if av.Width < 0 || av.Height < 0 || av.Width > maxDimension || av.Height > maxDimension {
		return AV{}, fmt.Errorf("%w: a %dx%d video frame", ErrNoMetadata, av.Width, av.Height)
	}
	return av, nil
}

// IsAV reports whether files of type t are probed for a duration.
func IsAV(t string) bool {
	switch t {
	case MP4, M4A, WebM, Ogg, MP3, WAV:
		return true
	}
	return false
}

// malformed wraps ErrNoMetadata with a reason.
func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrNoMetadata}, args...)...)
}

// readAt reads exactly n bytes at off, which must lie inside a file of
// size bytes.
func readAt(r io.ReaderAt, size, off int64, n int) ([]byte, error) {
	if off < 0 || n < 0 || off > size || int64(n) > size-off {
		return nil, malformed("a structure runs past the end of the file")
	}
	b := make([]byte, n)
	if _, err := r.ReadAt(b, off); err != nil && !(errors.Is(err, io.EOF)) {
		return nil, err
	} else if err != nil {
		return nil, malformed("the file is shorter than it says")
	}
	return b, nil
}

// scaled returns units/perSecond as a duration, rejecting absurd values.
func scaled(units, perSecond uint64) (time.Duration, error) {
	if perSecond == 0 {
		return 0, malformed("a time scale of zero")
	}
	secs, rest := units/perSecond, units%perSecond
	if secs > maxDurationMS/1000 {
		return 0, malformed("a duration of %d seconds", secs)
	}
	ms := secs*1000 + rest*1000/perSecond // rest < perSecond, so rest*1000 fits unless perSecond > 2^54
	if rest > math.MaxUint64/1000 {
		ms = secs*1000 + uint64(float64(rest)/float64(perSecond)*1000)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// errStop ends a walk early; it never leaves the package.
var errStop = errors.New("stop")
