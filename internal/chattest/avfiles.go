package chattest

import (
	"bytes"
	"encoding/binary"
)

// WAV returns a RIFF WAVE file of 16-bit mono silence at rate Hz lasting
// ms milliseconds.
func WAV(rate uint32, ms int) []byte {
	byteRate := rate * 2
	data := make([]byte, int(byteRate)*ms/1000)
	le := binary.LittleEndian
	var b bytes.Buffer
	b.WriteString("RIFF")
	b.Write(le.AppendUint32(nil, uint32(36+len(data))))
	b.WriteString("WAVEfmt ")
	b.Write(le.AppendUint32(nil, 16))
	b.Write(le.AppendUint16(nil, 1)) // PCM
	b.Write(le.AppendUint16(nil, 1)) // mono
	b.Write(le.AppendUint32(nil, rate))
	b.Write(le.AppendUint32(nil, byteRate))
	b.Write(le.AppendUint16(nil, 2))
	b.Write(le.AppendUint16(nil, 16))
	b.WriteString("data")
	b.Write(le.AppendUint32(nil, uint32(len(data))))
	b.Write(data)
	return b.Bytes()
}

// MP4 returns a minimal ISO media file (ftyp, moov with mvhd and one
// video trak with tkhd and hdlr, mdat) of the given playing time and
// frame size. It holds no media data: only the headers a prober reads.
func MP4(ms uint32, width, height uint32) []byte {
	be := binary.BigEndian
	box := func(typ string, body ...[]byte) []byte {
		b := bytes.Join(body, nil)
		return append(append(be.AppendUint32(nil, uint32(8+len(b))), typ...), b...)
	}
	mvhd := box("mvhd", make([]byte, 12), be.AppendUint32(nil, 1000), be.AppendUint32(nil, ms), make([]byte, 80))
	tkhd := box("tkhd", []byte{0, 0, 0, 7}, make([]byte, 72), be.AppendUint32(nil, width<<16), be.AppendUint32(nil, height<<16))
	hdlr := box("hdlr", make([]byte, 8), []byte("vide"), make([]byte, 13))
	return bytes.Join([][]byte{
		box("ftyp", []byte("isom"), be.AppendUint32(nil, 512), []byte("isomiso2mp41")),
		box("moov", mvhd, box("trak", tkhd, box("mdia", hdlr))),
		box("mdat", make([]byte, 32)),
	}, nil)
}
