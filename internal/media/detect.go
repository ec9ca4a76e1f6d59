package media

import (
	"bytes"
	"net/http"
	"strings"
)

// The content types an upload may have. Anything else is rejected.
const (
	JPEG = "image/jpeg"
	PNG  = "image/png"
	GIF  = "image/gif"
	WebP = "image/webp"
	MP4  = "video/mp4"
	WebM = "video/webm"
	Ogg  = "audio/ogg"
	MP3  = "audio/mpeg"
	M4A  = "audio/mp4"
	PDF  = "application/pdf"
	Zip  = "application/zip"
	Text = "text/plain; charset=utf-8"
)

// SniffLen is how many leading bytes Detect looks at.
const SniffLen = 512

// Detect returns the allowed content type of a file whose first bytes are
// head (up to SniffLen of them), or "" when the file is not of an allowed
// type. It trusts only the bytes: net/http.DetectContentType (the WHATWG
// sniffing algorithm) plus the magic numbers it lacks (MP3 without an ID3
// tag, M4A, the codec inside an Ogg file). RIFF WAVE audio is WAV.
func Detect(head []byte) string {
	if len(head) > SniffLen {
		head = head[:SniffLen]
	}
	if len(head) == 0 {
		return ""
	}
	switch t := http.DetectContentType(head); t {
	case JPEG, PNG, GIF, WebP, WebM, MP3, PDF, Zip, Text:
		return t
	case MP4:
		if brand := mp4Brand(head); brand == "M4A " || brand == "M4B " {
			return M4A
		}
		return MP4
	case "audio/wave":
		return WAV
	case "application/ogg":
		if bytes.Contains(head, []byte("OpusHead")) || bytes.Contains(head, []byte("\x01vorbis")) {
			return Ogg
		}
		return "" // Ogg video (Theora) is not on the list
	case "application/octet-stream":
		if isMP3Frame(head) {
			return MP3
		}
		// The WHATWG rule finds MP4 only by an "mp4*" brand; files that
		// list only ISO brands are MP4 too.
		switch mp4Brand(head) {
		case "M4A ", "M4B ":
			return M4A
		case "isom", "iso2", "iso4", "iso5", "iso6", "mp41", "mp42", "avc1", "M4V ", "dash":
			return MP4
		}
	}
	return ""
}

// mp4Brand returns the major brand of an ISO media file ("" if none).
func mp4Brand(head []byte) string {
	if len(head) < 12 || string(head[4:8]) != "ftyp" {
		return ""
	}
	return string(head[8:12])
}

// isMP3Frame reports whether head starts with an MPEG audio layer III
// frame header: an 11-bit sync, a valid version, layer III, and a valid
// bitrate and sample rate.
func isMP3Frame(head []byte) bool {
	if len(head) < 4 || head[0] != 0xFF || head[1]&0xE0 != 0xE0 {
		return false
	}
	version, layer := (head[1]>>3)&3, (head[1]>>1)&3
	bitrate, rate := head[2]>>4, (head[2]>>2)&3
	return version != 1 && layer == 1 && bitrate != 0 && bitrate != 15 && rate != 3
}

// Inline reports whether a file of type t may be shown in the browser
// (Content-Disposition: inline): images, video and audio. Everything else
// is served as a download.
func Inline(t string) bool {
	return strings.HasPrefix(t, "image/") || strings.HasPrefix(t, "video/") || strings.HasPrefix(t, "audio/")
}

// IsImage reports whether files of type t get dimensions and thumbnails.
func IsImage(t string) bool {
	return t == JPEG || t == PNG || t == GIF || t == WebP
}
