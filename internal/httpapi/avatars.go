package httpapi

import (
	"archive/zip"
	"io"
	"net/http"
	"time"

	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/core"
	"github.com/natter-chat/natter/internal/protocol"
)

// avatarRoutes registers avatar upload, download and deletion.
func (a *API) avatarRoutes(mux *http.ServeMux) {
	a.handleBody(mux, "POST /v1/users/me/avatar", true, core.MaxAvatarBytes+1, a.uploadAvatar)
	a.handle(mux, "DELETE /v1/users/me/avatar", true, a.deleteAvatar)
	a.handle(mux, "GET /v1/users/{id}/avatar", true, a.avatar)
}

// uploadAvatar takes the image as the raw body (any Content-Type: the
// type is detected from the bytes).
func (a *API) uploadAvatar(w http.ResponseWriter, r *http.Request, p core.Principal) error {
	prof, err := a.svc.UploadAvatar(r.Context(), p, r.Body)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, protocol.ProfileResponse{User: protocol.FromProfile(prof)})
	return nil
}

func (a *API) deleteAvatar(w http.ResponseWriter, r *http.Request, p core.Principal) error {
	prof, err := a.svc.DeleteAvatar(r.Context(), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, protocol.ProfileResponse{User: protocol.FromProfile(prof)})
	return nil
}

// avatar serves the avatar a user wears ("me" for the caller), or its
// thumbnail with ?size=thumb.
func (a *API) avatar(w http.ResponseWriter, r *http.Request, p core.Principal) error {
	user := p.User
	if r.PathValue("id") != "me" {
		id, err := pathID(r, "id")
		if err != nil {
			return err
		}
		user = chat.UserID(id)
	}
	var thumb bool
	switch size := r.URL.Query().Get("size"); size {
	case "", "full":
	case "thumb":
		thumb = true
	default:
		return chat.Errorf(chat.CodeInvalidArgument, "size must be full or thumb")
	}
	d, err := a.svc.OpenAvatar(r.Context(), p, user, thumb)
	if err != nil {
		return err
	}
	defer d.Body.Close()
	h := w.Header()
	h.Set("Cache-Control", "private, max-age=3600")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; img-src 'self'; sandbox")
	h.Set("Content-Type", d.ContentType)
	h.Set("ETag", `"`+d.SHA256+`"`)
	// ServeContent answers Range, If-None-Match (304) and If-Modified-Since.
	http.ServeContent(w, r, "", d.ModTime, d.Body)
	return nil
}

// exportFiles is the files entry of an export's manifest.
func exportFiles(e *core.Export) []protocol.ExportFile {
	out := make([]protocol.ExportFile, 0, len(e.Attachments)+1)
	for _, att := range e.Attachments {
		out = append(out, protocol.ExportAttachment(att))
	}
	if e.Avatar != nil {
		out = append(out, protocol.ExportAvatar(*e.Avatar))
	}
	return out
}

// writeExportFile stores one attachment or the avatar in the archive,
// uncompressed (images, audio and video are compressed already).
func writeExportFile(zw *zip.Writer, f core.ExportFile, body io.Reader, now time.Time) error {
	entry := protocol.ExportAttachment(f.Attachment)
	if f.Avatar != nil {
		entry = protocol.ExportAvatar(*f.Avatar)
	}
	w, err := zw.CreateHeader(&zip.FileHeader{Name: entry.Path, Method: zip.Store, Modified: now})
	if err != nil {
		return err
	}
	_, err = io.Copy(w, body)
	return err
}
