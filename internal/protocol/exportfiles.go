package protocol

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/natter-chat/natter/internal/chat"
)

// ExportFile is one entry of manifest.json's files in a data export: a
// file of the archive and what it is.
type ExportFile struct {
	Path         string `json:"path"` // inside the archive
	Kind         string `json:"kind"` // "attachment" or "avatar"
	ID           string `json:"id"`
	Name         string `json:"name,omitempty"` // as uploaded (attachments)
	ContentType  string `json:"content_type"`
	Size         int64  `json:"size"`
	SHA256       string `json:"sha256"`
	Conversation string `json:"conversation,omitempty"` // the conversation it was uploaded for
	Message      string `json:"message,omitempty"`      // the message carrying it; absent for an upload never sent
}

// maxExportName bounds the uploaded name kept in an archive path, in bytes.
const maxExportName = 100

// ExportAttachment describes attachment a, stored in the archive under
// attachments/<id>-<name>.
func ExportAttachment(a chat.Attachment) ExportFile {
	f := ExportFile{Path: "attachments/" + string(a.ID) + "-" + SafeFileName(a.Name), Kind: "attachment", ID: string(a.ID),
		Name: a.Name, ContentType: a.ContentType, Size: a.Size, SHA256: a.SHA256, Conversation: a.Conv.String()}
	if a.Message != 0 {
		f.Message = a.Message.String()
	}
	return f
}

// ExportAvatar describes avatar a, stored in the archive as avatar.jpg
// or avatar.png.
func ExportAvatar(a chat.Avatar) ExportFile {
	ext := ".png"
	if a.ContentType == "image/jpeg" {
		ext = ".jpg"
	}
	return ExportFile{Path: "avatar" + ext, Kind: "avatar", ID: a.ID, ContentType: a.ContentType, Size: a.Size, SHA256: a.SHA256}
}

// SafeFileName turns an uploaded name into one that is safe as the last
// element of an archive path on any system: no path separators, no
// control or reserved characters, no leading dots (so no "." or ".."),
// at most maxExportName bytes of valid UTF-8; "file" when nothing is left.
func SafeFileName(name string) string {
	var b strings.Builder
	for _, r := range name {
		switch {
		case r == utf8.RuneError, unicode.IsControl(r), strings.ContainsRune(`/\:*?"<>|`, r):
			r = '_'
		}
		if b.Len()+utf8.RuneLen(r) > maxExportName {
			break
		}
		b.WriteRune(r)
	}
	out := strings.TrimLeft(strings.TrimSpace(b.String()), ".")
	out = strings.ReplaceAll(out, "..", "_")
	if out == "" {
		return "file"
	}
	return out
}
