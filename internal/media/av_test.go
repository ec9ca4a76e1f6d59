package media_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"testing"
	"time"

	"github.com/natter-chat/natter/internal/media"
)

// be32 and friends build the files the tests probe.
func be32(v uint32) []byte       { return binary.BigEndian.AppendUint32(nil, v) }
func be64(v uint64) []byte       { return binary.BigEndian.AppendUint64(nil, v) }
func le16(v uint16) []byte       { return binary.LittleEndian.AppendUint16(nil, v) }
func le32(v uint32) []byte       { return binary.LittleEndian.AppendUint32(nil, v) }
func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// mp4Box writes a box with a 32-bit size, or a 64-bit one when large.
func mp4Box(typ string, large bool, body ...[]byte) []byte {
	b := cat(body...)
	if large {
		return cat(be32(1), []byte(typ), be64(uint64(16+len(b))), b)
	}
	return cat(be32(uint32(8+len(b))), []byte(typ), b)
}

// mvhd writes a movie header of version v.
func mvhd(v byte, timescale uint32, duration uint64) []byte {
	if v == 1 {
		return mp4Box("mvhd", false, []byte{1, 0, 0, 0}, be64(0), be64(0), be32(timescale), be64(duration), make([]byte, 80))
	}
	return mp4Box("mvhd", false, []byte{0, 0, 0, 0}, be32(0), be32(0), be32(timescale), be32(uint32(duration)), make([]byte, 80))
}

// trak writes a track with a tkhd of version v and a handler.
func trak(v byte, handler string, w, h uint32) []byte {
	var tkhd []byte
	if v == 1 {
		tkhd = cat([]byte{1, 0, 0, 7}, make([]byte, 32), make([]byte, 8), make([]byte, 8), make([]byte, 36), be32(w<<16), be32(h<<16))
	} else {
		tkhd = cat([]byte{0, 0, 0, 7}, make([]byte, 20), make([]byte, 8), make([]byte, 8), make([]byte, 36), be32(w<<16), be32(h<<16))
	}
	hdlr := mp4Box("hdlr", false, make([]byte, 8), []byte(handler), make([]byte, 13))
	return mp4Box("trak", false, mp4Box("tkhd", false, tkhd), mp4Box("mdia", false, mp4Box("mdhd", false, make([]byte, 24)), hdlr))
}

func mp4File(version byte, large bool) []byte {
	ftyp := mp4Box("ftyp", false, []byte("isom"), be32(512), []byte("isomiso2avc1mp41"))
	moov := mp4Box("moov", large, mvhd(version, 600, 600*83+300), trak(version, "soun", 0, 0), trak(version, "vide", 1280, 720))
	return cat(ftyp, mp4Box("free", false, make([]byte, 16)), moov, mp4Box("mdat", large, make([]byte, 64)))
}

// oggPage writes one Ogg page holding packet.
func oggPage(serial, seq uint32, granule uint64, headerType byte, packet []byte) []byte {
	var lacing []byte
	n := len(packet)
	for ; n >= 255; n -= 255 {
		lacing = append(lacing, 255)
	}
	lacing = append(lacing, byte(n))
	page := cat([]byte("OggS"), []byte{0, headerType}, binary.LittleEndian.AppendUint64(nil, granule), le32(serial), le32(seq), le32(0),
		[]byte{byte(len(lacing))}, lacing, packet)
	binary.LittleEndian.PutUint32(page[22:], crc32.ChecksumIEEE(page)) // not Ogg's CRC; the probe does not check it
	return page
}

func oggOpus() []byte {
	head := cat([]byte("OpusHead"), []byte{1, 2}, le16(312), le32(44100), le16(0), []byte{0})
	tags := cat([]byte("OpusTags"), le32(4), []byte("test"), le32(0))
	audio := bytes.Repeat([]byte{0xFC, 0xFF, 0xFE}, 50)
	// 2.5 s of audio at 48 kHz after a 312-sample pre-skip.
	return cat(oggPage(7, 0, 0, 2, head), oggPage(7, 1, 0, 0, tags), oggPage(7, 2, 48000, 0, audio), oggPage(7, 3, 312+120000, 4, audio))
}

func oggVorbis() []byte {
	ident := cat([]byte("\x01vorbis"), le32(0), []byte{1}, le32(22050), le32(0), le32(64000), le32(0), []byte{0xB8, 1})
	return cat(oggPage(9, 0, 0, 2, ident), oggPage(9, 1, 22050*4, 4, []byte{1, 2, 3}))
}

func wavFile(rate uint32, channels uint16, seconds float64) []byte {
	bytesPerSample := uint16(2)
	byteRate := rate * uint32(channels) * uint32(bytesPerSample)
	data := make([]byte, int(float64(byteRate)*seconds))
	fmtChunk := cat([]byte("fmt "), le32(16), le16(1), le16(channels), le32(rate), le32(byteRate), le16(channels*bytesPerSample), le16(16))
	list := cat([]byte("LIST"), le32(5), []byte("INFOx"), []byte{0}) // odd size: padded
	body := cat([]byte("WAVE"), fmtChunk, list, []byte("data"), le32(uint32(len(data))), data)
	return cat([]byte("RIFF"), le32(uint32(len(body))), body)
}

// mp3Frames writes n MPEG-1 layer III frames of 128 kbit/s at 44.1 kHz,
// stereo (417 bytes each), the first one carrying a Xing header when xing.
func mp3Frames(n int, xing bool) []byte {
	frame := func() []byte { f := make([]byte, 417); copy(f, []byte{0xFF, 0xFB, 0x90, 0x00}); return f }
	var out []byte
	for i := range n {
		f := frame()
		if i == 0 && xing {
			copy(f[4+32:], cat([]byte("Xing"), be32(1), be32(1000)))
		}
		out = append(out, f...)
	}
	return out
}

func mkv(duration float64, scale uint64, w, h uint16) []byte {
	el := func(id []byte, body ...[]byte) []byte {
		b := cat(body...)
		return cat(id, []byte{0x01, 0, 0, 0, 0, 0, 0, 0}[:0], ebmlLen(len(b)), b)
	}
	f64 := be64(math.Float64bits(duration))
	header := el([]byte{0x1A, 0x45, 0xDF, 0xA3}, el([]byte{0x42, 0x86}, []byte{1}), el([]byte{0x42, 0x82}, []byte("webm")))
	info := el([]byte{0x15, 0x49, 0xA9, 0x66}, el([]byte{0x2A, 0xD7, 0xB1}, be64(scale)[5:]), el([]byte{0x44, 0x89}, f64))
	audio := el([]byte{0xAE}, el([]byte{0xD7}, []byte{1}), el([]byte{0x83}, []byte{2}))
	video := el([]byte{0xAE}, el([]byte{0xD7}, []byte{2}), el([]byte{0x83}, []byte{1}),
		el([]byte{0xE0}, el([]byte{0xB0}, be32(uint32(w))[2:]), el([]byte{0xBA}, be32(uint32(h))[2:])))
	tracks := el([]byte{0x16, 0x54, 0xAE, 0x6B}, audio, video)
	cluster := el([]byte{0x1F, 0x43, 0xB6, 0x75}, make([]byte, 100))
	// A live recording: the Segment's size is unknown (all ones).
	segment := cat([]byte{0x18, 0x53, 0x80, 0x67}, []byte{0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, info, tracks, cluster)
	return cat(header, segment)
}

// ebmlLen writes n as a 4-byte EBML size.
func ebmlLen(n int) []byte { return []byte{0x10 | byte(n>>24), byte(n >> 16), byte(n >> 8), byte(n)} }

func TestProbe_ReadsDurationAndSize(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		t    string
		want media.AV
	}{
		{"mp4 v0 boxes", mp4File(0, false), media.MP4, media.AV{Duration: 83500 * time.Millisecond, Width: 1280, Height: 720}},
		{"mp4 v1 boxes with 64-bit sizes", mp4File(1, true), media.MP4, media.AV{Duration: 83500 * time.Millisecond, Width: 1280, Height: 720}},
		{"webm with unknown segment size", mkv(12345.6, 1_000_000, 640, 360), media.WebM, media.AV{Duration: 12346 * time.Millisecond, Width: 640, Height: 360}},
		{"webm with a microsecond timecode scale", mkv(2_500_000, 1000, 320, 240), media.WebM, media.AV{Duration: 2500 * time.Millisecond, Width: 320, Height: 240}},
		{"ogg opus", oggOpus(), media.Ogg, media.AV{Duration: 2500 * time.Millisecond, SampleRate: 48000}},
		{"ogg vorbis", oggVorbis(), media.Ogg, media.AV{Duration: 4 * time.Second, SampleRate: 22050}},
		{"wav", wavFile(8000, 1, 1.5), media.WAV, media.AV{Duration: 1500 * time.Millisecond, SampleRate: 8000}},
		{"mp3 with a Xing header", cat([]byte("ID3\x03\x00\x00\x00\x00\x00\x0a"), make([]byte, 10), mp3Frames(3, true)), media.MP3,
			media.AV{Duration: 26122 * time.Millisecond, SampleRate: 44100}}, // 1000 frames × 1152 / 44100
		{"mp3 constant bitrate", mp3Frames(300, false), media.MP3, media.AV{Duration: 7818 * time.Millisecond, SampleRate: 44100}}, // 125100 bytes at 16000 B/s
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := media.Detect(tt.data); got != tt.t {
				t.Fatalf("Detect = %q, want %q", got, tt.t)
			}
			got, err := media.Probe(bytes.NewReader(tt.data), int64(len(tt.data)), tt.t)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("Probe = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestProbe_RejectsBrokenFiles(t *testing.T) {
	huge := mp4File(0, false)
	binary.BigEndian.PutUint32(huge[56:], 1<<31) // moov claims 2 GiB
	loop := cat(mp4Box("ftyp", false, []byte("isom")), be32(0)[:0], be32(4), []byte("moov"))
	tests := []struct {
		name string
		data []byte
		t    string
	}{
		{"mp4 truncated in moov", mp4File(0, false)[:120], media.MP4},
		{"mp4 box larger than the file", huge, media.MP4},
		{"mp4 box smaller than its header", loop, media.MP4},
		{"mp4 without moov", mp4Box("ftyp", false, []byte("isom")), media.MP4},
		{"webm truncated", mkv(1000, 1_000_000, 1, 1)[:60], media.WebM},
		{"ogg without a last page", oggOpus()[:40], media.Ogg},
		{"ogg of another codec", oggPage(1, 0, 5, 2, []byte("\x80theora-----------")), media.Ogg},
		{"wav without data", wavFile(8000, 1, 0)[:36], media.WAV},
		{"mp3 of garbage", bytes.Repeat([]byte{0x12}, 2000), media.MP3},
		{"empty", nil, media.MP4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := media.Probe(bytes.NewReader(tt.data), int64(len(tt.data)), tt.t)
			if !errors.Is(err, media.ErrNoMetadata) {
				t.Fatalf("Probe = %v, want ErrNoMetadata", err)
			}
		})
	}
}

// fuzzProbe checks that Probe never panics or hangs on data of type t.
func fuzzProbe(f *testing.F, t string, seeds ...[]byte) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(tt *testing.T, data []byte) {
		av, err := media.Probe(bytes.NewReader(data), int64(len(data)), t)
		if err == nil && (av.Duration < 0 || av.Width < 0 || av.Height < 0) {
			tt.Fatalf("Probe = %+v", av)
		}
	})
}

func FuzzProbeMP4(f *testing.F)  { fuzzProbe(f, media.MP4, mp4File(0, false), mp4File(1, true)) }
func FuzzProbeWebM(f *testing.F) { fuzzProbe(f, media.WebM, mkv(1000, 1_000_000, 64, 48)) }
func FuzzProbeOgg(f *testing.F)  { fuzzProbe(f, media.Ogg, oggOpus(), oggVorbis()) }
func FuzzProbeMP3(f *testing.F)  { fuzzProbe(f, media.MP3, mp3Frames(3, true), mp3Frames(5, false)) }
func FuzzProbeWAV(f *testing.F)  { fuzzProbe(f, media.WAV, wavFile(8000, 2, 0.01)) }
