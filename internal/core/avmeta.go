package core

import (
	"os"

	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/media"
)

// probeAV records the duration and frame size of the audio or video file
// f (of type t) in a. Metadata is a courtesy: a file whose headers cannot
// be read is still accepted, without it.
func probeAV(a *chat.Attachment, f *os.File, t string) {
	st, err := f.Stat()
	if err != nil {
		return
	}
	av, err := media.Probe(f, st.Size(), t)
	if err != nil {
		return
	}
	a.DurationMS = av.Duration.Milliseconds()
	if a.Width == 0 && a.Height == 0 {
		a.Width, a.Height = av.Width, av.Height
	}
}
