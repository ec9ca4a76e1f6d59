package httpapi

import (
	"errors"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/core"
	"github.com/natter-chat/natter/internal/media"
	"github.com/natter-chat/natter/internal/protocol"
)

func (a *API) attachmentRoutes(mux *http.ServeMux) {
	maxUpload := a.svc.Options().Attachments.MaxUploadBytes
	if maxUpload <= 0 {
		maxUpload = 100 << 20
	}
	a.handle(mux, "POST /v1/conversations/{id}/attachments", true, a.createUpload)
	a.handleBody(mux, "PUT /v1/attachments/{id}/content", true, maxUpload+1, a.uploadChunk)
	a.handle(mux, "GET /v1/attachments/{id}", true, a.getAttachment)
	a.handle(mux, "GET /v1/attachments/{id}/url", true, a.attachmentURL)
	// Downloads take a bearer token or a signed URL, so they authenticate
	// on their own (GET patterns also serve HEAD).
	a.handle(mux, "GET /v1/attachments/{id}/content", false, a.download(false))
	a.handle(mux, "GET /v1/attachments/{id}/thumbnail", false, a.download(true))
}

func pathAttachment(r *http.Request) (chat.AttachmentID, error) {
	id := r.PathValue("id")
	if !core.ValidAttachmentID(id) {
		// A malformed id names nothing: the same answer as an unknown one.
		return "", chat.Errorf(chat.CodeNotFound, "no such attachment")
	}
	return chat.AttachmentID(id), nil
}

func uploadURL(id chat.AttachmentID) string { return "/v1/attachments/" + string(id) + "/content" }

func (a *API) createUpload(w http.ResponseWriter, r *http.Request, p core.Principal) error {
	conv, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var req protocol.CreateUploadRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	att, err := a.svc.CreateUpload(r.Context(), p, chat.ConversationID(conv), req.Name, req.Size, req.ContentType)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/attachments/"+string(att.ID))
	writeJSON(w, http.StatusCreated, protocol.UploadResponse{Attachment: protocol.FromUpload(att), UploadURL: uploadURL(att.ID)})
	return nil
}

// parseContentRange parses "bytes first-last/total" into a chunk.
func parseContentRange(h string) (core.Chunk, error) {
	bad := chat.Errorf(chat.CodeInvalidArgument, "Content-Range must be bytes first-last/total")
	spec, ok := strings.CutPrefix(h, "bytes ")
	if !ok {
		return core.Chunk{}, bad
	}
	rng, total, ok := strings.Cut(spec, "/")
	first, last, ok2 := strings.Cut(rng, "-")
	if !ok || !ok2 {
		return core.Chunk{}, bad
	}
	f, err1 := strconv.ParseInt(first, 10, 64)
	l, err2 := strconv.ParseInt(last, 10, 64)
	t, err3 := strconv.ParseInt(total, 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || f < 0 || l < f || t <= l {
		return core.Chunk{}, bad
	}
	return core.Chunk{Start: f, Length: l - f + 1, Total: t}, nil
}

func (a *API) uploadChunk(w http.ResponseWriter, r *http.Request, p core.Principal) error {
	id, err := pathAttachment(r)
	if err != nil {
		return err
	}
	c := core.Chunk{Start: 0, Length: r.ContentLength}
	if h := r.Header.Get("Content-Range"); h != "" {
		if c, err = parseContentRange(h); err != nil {
			return err
		}
		if r.ContentLength >= 0 && r.ContentLength != c.Length {
			return chat.Errorf(chat.CodeInvalidArgument, "Content-Length does not match Content-Range")
		}
	}
	att, err := a.svc.UploadChunk(r.Context(), p, id, c, r.Body)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return chat.Errorf(chat.CodeTooLarge, "a file may have at most %d bytes", tooBig.Limit-1)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, protocol.UploadResponse{Attachment: protocol.FromUpload(att), UploadURL: uploadURL(att.ID)})
	return nil
}

func (a *API) getAttachment(w http.ResponseWriter, r *http.Request, p core.Principal) error {
	id, err := pathAttachment(r)
	if err != nil {
		return err
	}
	att, err := a.svc.GetAttachment(r.Context(), p, id)
	if err != nil {
		return err
	}
	resp := protocol.UploadResponse{Attachment: protocol.FromUpload(att)}
	if att.State == chat.AttachmentUploading {
		resp.UploadURL = uploadURL(att.ID)
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (a *API) attachmentURL(w http.ResponseWriter, r *http.Request, p core.Principal) error {
	id, err := pathAttachment(r)
	if err != nil {
		return err
	}
	att, signed, err := a.svc.SignAttachment(r.Context(), p, id)
	if err != nil {
		return err
	}
	if att.State != chat.AttachmentReady {
		return chat.Errorf(chat.CodeConflict, "the attachment has no content yet (it is %s)", att.State)
	}
	out := protocol.AttachmentURLResponse{URL: uploadURL(id) + "?" + signed.Query, ExpiresAt: signed.Expires}
	if att.ThumbnailKey != "" {
		out.ThumbnailURL = "/v1/attachments/" + string(id) + "/thumbnail?" + signed.Query
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// download serves an attachment's content (or thumbnail) to a member with
// a bearer token, or to anyone with a valid signed URL (?exp=&sig=).
func (a *API) download(thumbnail bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, _ core.Principal) error {
		id, err := pathAttachment(r)
		if err != nil {
			return err
		}
		q := r.URL.Query()
		var d core.Download
		var cache string
		if q.Has("sig") || q.Has("exp") {
			var exp time.Time
			if d, exp, err = a.svc.OpenSigned(r.Context(), id, q.Get("exp"), q.Get("sig"), thumbnail); err != nil {
				return err
			}
			secs := max(0, int(time.Until(exp)/time.Second))
			cache = "public, max-age=" + strconv.Itoa(secs) + ", immutable"
		} else {
			p, err := a.authenticate(r)
			if err != nil {
				return err
			}
			if a.opts.Limit != nil {
				if ok, wait := a.opts.Limit.Allow(p.User.String()); !ok {
					return &core.RetryError{Err: chat.Errorf(chat.CodeRateLimited, "too many requests; retry later"), After: wait}
				}
			}
			if r.Method == http.MethodHead && !thumbnail {
				if done, err := a.uploadProgress(w, r, p, id); done || err != nil {
					return err
				}
			}
			if d, err = a.svc.OpenAttachment(r.Context(), p, id, thumbnail); err != nil {
				return err
			}
			cache = "private, max-age=600"
		}
		defer d.Body.Close()
		serveDownload(w, r, d, cache)
		return nil
	}
}

// uploadProgress answers HEAD for an upload in progress: Upload-Offset
// is the number of bytes stored, where the next chunk starts. It reports
// whether it answered.
func (a *API) uploadProgress(w http.ResponseWriter, r *http.Request, p core.Principal, id chat.AttachmentID) (bool, error) {
	att, err := a.svc.GetAttachment(r.Context(), p, id)
	if err != nil {
		return true, err
	}
	if att.State != chat.AttachmentUploading {
		return false, nil
	}
	w.Header().Set("Upload-Offset", strconv.FormatInt(att.Received, 10))
	w.Header().Set("Upload-Length", strconv.FormatInt(att.Size, 10))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
	return true, nil
}

func serveDownload(w http.ResponseWriter, r *http.Request, d core.Download, cache string) {
	att := d.Attachment
	h := w.Header()
	h.Set("Cache-Control", cache)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; media-src 'self'; img-src 'self'; sandbox")
	etag, ctype := `"`+att.SHA256+`"`, att.ContentType
	name := att.Name
	if d.Thumbnail {
		etag, ctype, name = `"`+att.SHA256+`-thumbnail"`, media.JPEG, "thumbnail-"+att.Name+".jpg"
	}
	h.Set("ETag", etag)
	h.Set("Content-Type", ctype)
	disposition := "attachment"
	if media.Inline(ctype) {
		disposition = "inline"
	}
	if v := mime.FormatMediaType(disposition, map[string]string{"filename": name}); v != "" {
		h.Set("Content-Disposition", v)
	} else {
		h.Set("Content-Disposition", disposition)
	}
	// ServeContent answers Range (206), If-None-Match (304) and
	// If-Modified-Since from the headers set above.
	http.ServeContent(w, r, "", d.ModTime, d.Body)
}
