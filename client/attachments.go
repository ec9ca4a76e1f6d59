package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/natter-chat/natter/internal/protocol"
)

// The attachment wire types.
type (
	Attachment            = protocol.Attachment
	Upload                = protocol.Upload
	UploadResponse        = protocol.UploadResponse
	AttachmentURLResponse = protocol.AttachmentURLResponse
	CreateUploadRequest   = protocol.CreateUploadRequest
)

// DefaultChunkSize is the chunk size UploadFile uses when given none.
const DefaultChunkSize = 4 << 20

// CreateUpload starts an upload of a file of size bytes to conv
// (POST /v1/conversations/{id}/attachments). contentType is a hint; the
// server detects the real type from the bytes. Errors: not_found,
// invalid_argument, too_large.
func (c *Client) CreateUpload(ctx context.Context, conv, name string, size int64, contentType string) (Upload, error) {
	var r UploadResponse
	err := c.do(ctx, http.MethodPost, convPath(conv)+"/attachments", nil, CreateUploadRequest{Name: name, Size: size, ContentType: contentType}, &r)
	return r.Attachment, err
}

// UploadChunk stores chunk as bytes [start, start+len(chunk)) of the
// upload id of total bytes (PUT /v1/attachments/{id}/content with
// Content-Range). The chunk that completes the file returns the finished
// attachment. Errors: conflict (start is not where the upload stands:
// see Attachment().Received), too_large, unsupported_media_type.
func (c *Client) UploadChunk(ctx context.Context, id string, start int64, chunk []byte, total int64) (Upload, error) {
	h := http.Header{}
	h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, start+int64(len(chunk))-1, total))
	var r UploadResponse
	err := c.raw(ctx, http.MethodPut, attachmentPath(id)+"/content", h, bytes.NewReader(chunk), int64(len(chunk)), &r)
	return r.Attachment, err
}

// UploadFile uploads the size bytes of r to conv in chunks of chunkSize
// bytes (zero means DefaultChunkSize) and returns the ready attachment.
func (c *Client) UploadFile(ctx context.Context, conv, name, contentType string, r io.ReaderAt, size int64, chunkSize int) (Upload, error) {
	u, err := c.CreateUpload(ctx, conv, name, size, contentType)
	if err != nil {
		return Upload{}, err
	}
	return c.ResumeUpload(ctx, u.ID, r, size, chunkSize)
}

// ResumeUpload sends the rest of the upload id from r: it asks the server
// how many bytes it has and uploads the remaining ones in chunks. It is
// how an interrupted upload continues.
func (c *Client) ResumeUpload(ctx context.Context, id string, r io.ReaderAt, size int64, chunkSize int) (Upload, error) {
	if chunkSize <= 0 {
		chunkSize = DefaultChunkSize
	}
	u, err := c.Attachment(ctx, id)
	if err != nil {
		return Upload{}, err
	}
	buf := make([]byte, chunkSize)
	for u.State == "uploading" {
		n := min(int64(chunkSize), size-u.Received)
		if _, err := r.ReadAt(buf[:n], u.Received); err != nil && err != io.EOF {
			return Upload{}, fmt.Errorf("natter: read the file at %d: %w", u.Received, err)
		}
		if u, err = c.UploadChunk(ctx, id, u.Received, buf[:n], size); err != nil {
			return Upload{}, err
		}
	}
	return u, nil
}

// Attachment returns an attachment's metadata and, while it uploads, its
// progress (GET /v1/attachments/{id}). Errors: not_found.
func (c *Client) Attachment(ctx context.Context, id string) (Upload, error) {
	var r UploadResponse
	err := c.do(ctx, http.MethodGet, attachmentPath(id), nil, nil, &r)
	return r.Attachment, err
}

// AttachmentURL returns links that download the attachment without a
// token for a few minutes (GET /v1/attachments/{id}/url).
func (c *Client) AttachmentURL(ctx context.Context, id string) (AttachmentURLResponse, error) {
	var r AttachmentURLResponse
	err := c.do(ctx, http.MethodGet, attachmentPath(id)+"/url", nil, nil, &r)
	return r, err
}

// Download writes the attachment's content (or, with thumbnail, its
// thumbnail) to w and returns the response headers
// (GET /v1/attachments/{id}/content or /thumbnail). Errors: not_found.
func (c *Client) Download(ctx context.Context, id string, thumbnail bool, w io.Writer) (http.Header, error) {
	what := "/content"
	if thumbnail {
		what = "/thumbnail"
	}
	var h http.Header
	err := c.raw(ctx, http.MethodGet, attachmentPath(id)+what, nil, nil, 0, func(resp *http.Response) error {
		h = resp.Header
		_, err := io.Copy(w, resp.Body)
		return err
	})
	return h, err
}

// SendAttachments is Send with attachments: ids of the caller's ready
// uploads to conv; text may then be empty. Errors: those of Send, and
// not_found or conflict for an attachment that cannot be sent.
func (c *Client) SendAttachments(ctx context.Context, conv, clientID, text string, attachments []string) (MessageResponse, error) {
	var r MessageResponse
	err := c.do(ctx, http.MethodPost, convPath(conv)+"/messages", nil, SendRequest{ClientID: clientID, Text: text, Attachments: attachments}, &r)
	return r, err
}

func attachmentPath(id string) string { return "/v1/attachments/" + id }

// raw sends a request with a non-JSON body. out is a JSON destination or
// a func(*http.Response) error that reads the body itself.
func (c *Client) raw(ctx context.Context, method, path string, h http.Header, body io.Reader, size int64, out any) error {
	op := method + " " + path
	if c.badURL != nil {
		return fmt.Errorf("natter: %s: %w", op, c.badURL)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("natter: %s: %w", op, err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	if body != nil {
		req.ContentLength = size
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set("Content-Length", strconv.FormatInt(size, 10))
	}
	if tok := c.accessToken(); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("natter: %s: %w", op, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return parseError(op, resp.StatusCode, resp.Header, b)
	}
	if read, ok := out.(func(*http.Response) error); ok {
		if err := read(resp); err != nil {
			return fmt.Errorf("natter: %s: %w", op, err)
		}
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponseBody)).Decode(out); err != nil {
		return fmt.Errorf("natter: %s: decode response: %w", op, err)
	}
	return nil
}

// SendAttachments is Send with attachments (see Client.SendAttachments).
func (c *Conn) SendAttachments(ctx context.Context, conv, clientID, text string, attachments []string) (msg Message, duplicate bool, err error) {
	const op = "ws send"
	r, err := c.request(ctx, op, ClientFrame{Type: protocol.TypeSend, Conv: conv, ClientID: clientID, Text: text, Attachments: attachments})
	if err != nil {
		return Message{}, false, err
	}
	m, err := r.Msg()
	if err != nil || m == nil || r.Type != protocol.TypeAck {
		return Message{}, false, unexpected(op, r, err)
	}
	return *m, r.Duplicate, nil
}
