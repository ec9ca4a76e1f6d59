package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/natter-chat/natter/internal/protocol"
)

// connHeader names the caller's event stream on POST /v1/frames, so that
// the server treats the frame as if it came on that connection.
const connHeader = "X-Natter-Conn"

// maxEventBytes bounds one event of the stream (a changes page can be
// large; a frame is far smaller than this).
const maxEventBytes = maxResponseBody

// errStreamEnded is why an event stream ended when the server did not
// say.
var errStreamEnded = errors.New("the server ended the event stream")

// sseLink is the fallback transport: the server's frames arrive as
// Server-Sent Events on GET /v1/events, and each request is a POST
// /v1/frames answered in its response.
type sseLink struct {
	client *Client
	stream *http.Client    // the event stream: no overall timeout
	posts  *http.Client    // the requests
	own    *http.Transport // made for ConnOptions.LocalAddr; nil when the Client's is used
	life   context.Context // the stream's and every request's: cancel ends them
	cancel context.CancelFunc
	body   io.ReadCloser // the stream; set before the reader starts
	bufLen int
	id     string // the stream's id, from the ready frame; written before Conn.ready is closed
}

func (c *Client) connectSSE(ctx context.Context, opts ConnOptions, local net.IP) (*Conn, error) {
	const op = "sse connect"
	l := &sseLink{client: c, posts: c.http, bufLen: cmpOr(opts.ReadBufferSize, 4096)}
	if local != nil {
		l.own = transportFrom(c.http.Transport, local)
		posts := *c.http
		posts.Transport = l.own
		l.posts = &posts
	}
	stream := *l.posts
	stream.Timeout = 0
	l.stream = &stream
	l.life, l.cancel = context.WithCancel(context.Background())
	fail := func(err error) (*Conn, error) {
		l.cancel()
		l.release()
		return nil, err
	}
	req, err := http.NewRequestWithContext(l.life, http.MethodGet, c.base+"/v1/events", nil)
	if err != nil {
		return fail(fmt.Errorf("natter: %s: %w", op, err))
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	if tok := c.accessToken(); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	// ctx and the timeout bound the request and the wait for ready, not
	// the stream.
	timeout := connectTimeout(ctx)
	begun := time.Now()
	stop := context.AfterFunc(ctx, l.cancel)
	timer := time.AfterFunc(timeout, l.cancel)
	resp, err := l.stream.Do(req)
	timedOut := !timer.Stop()
	if err != nil {
		stop()
		switch {
		case ctx.Err() != nil:
			return fail(fmt.Errorf("natter: %s: %w", op, ctx.Err()))
		case timedOut:
			return fail(fmt.Errorf("natter: %s: no answer within %s", op, timeout))
		}
		return fail(fmt.Errorf("natter: %s: %w", op, err))
	}
	if resp.StatusCode != http.StatusOK {
		stop()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		resp.Body.Close()
		return fail(parseError(op, resp.StatusCode, resp.Header, b))
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		stop()
		resp.Body.Close()
		return fail(fmt.Errorf("natter: %s: the server answered with %q, not an event stream", op, ct))
	}
	l.body = resp.Body
	conn := newConn(opts)
	conn.link = l
	conn.start()
	err = conn.awaitReady(ctx, op, max(timeout-time.Since(begun), time.Millisecond))
	if !stop() && err == nil { // ctx ended just as ready came: the stream is cancelled
		err = fmt.Errorf("natter: %s: %w", op, ctx.Err())
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// transportFrom returns a copy of base (http.DefaultTransport when it is
// not an *http.Transport) that dials from local.
func transportFrom(base http.RoundTripper, local net.IP) *http.Transport {
	t, ok := base.(*http.Transport)
	if !ok {
		t = http.DefaultTransport.(*http.Transport)
	}
	t = t.Clone()
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, LocalAddr: &net.TCPAddr{IP: local}}
	t.DialContext = d.DialContext
	return t
}

func (l *sseLink) name() string { return TransportSSE }

func (l *sseLink) close() { l.cancel() }

// release closes the idle connections of a transport the link made.
func (l *sseLink) release() {
	if l.own != nil {
		l.own.CloseIdleConnections()
	}
}

// run reads the stream until it ends. It records the end before it
// cancels the requests in flight, so that they fail with the Conn's
// *CloseError.
func (l *sseLink) run(c *Conn) error {
	cause := l.read(c)
	c.finish(cause)
	l.cancel()
	l.body.Close()
	l.release()
	return cause
}

// read parses the event stream (the subset of Server-Sent Events the
// server writes: "data:" lines, comments and blank lines ending an event,
// lines ending in LF or CRLF) and hands every event's data to c.handle.
// It returns why the stream ended: a *CloseError when the server said why
// in the last frame, otherwise the read error.
func (l *sseLink) read(c *Conn) error {
	r := bufio.NewReaderSize(l.body, l.bufLen)
	var (
		data []byte
		said *CloseError // the end that the last frame announced
	)
	for {
		line, err := readLine(r, maxEventBytes)
		if err != nil {
			if errors.Is(err, io.EOF) {
				if said != nil {
					return said
				}
				return &CloseError{cause: errStreamEnded}
			}
			return err
		}
		switch {
		case len(line) == 0:
			if len(data) == 0 {
				continue
			}
			l.readyID(data)
			if f, ok := c.handle(data); ok {
				said = announcedEnd(f)
			}
			data = data[:0]
		case line[0] == ':': // a comment: the server's heartbeat
		default:
			name, value, _ := bytes.Cut(line, []byte(":"))
			if string(name) != "data" {
				continue // event, id and retry are not used
			}
			if len(data) > 0 {
				data = append(data, '\n')
			}
			data = append(data, bytes.TrimPrefix(value, []byte(" "))...)
			if len(data) > maxEventBytes {
				return fmt.Errorf("an event of the stream is over %d bytes", maxEventBytes)
			}
		}
	}
}

// readyID records the stream id that the ready frame carries; requests
// name it in X-Natter-Conn. It must run before c.handle sees the frame.
func (l *sseLink) readyID(data []byte) {
	if l.id != "" {
		return
	}
	var ready struct {
		Type string `json:"type"`
		Conn string `json:"conn"`
	}
	if json.Unmarshal(data, &ready) == nil && ready.Type == protocol.TypeReady {
		l.id = ready.Conn
	}
}

// announcedEnd returns the close a WebSocket would have had if the server
// ends the stream right after f, or nil when f does not announce an end.
func announcedEnd(f ServerFrame) *CloseError {
	switch {
	case f.Type == protocol.TypeReconnect:
		return &CloseError{Code: 1001, Reason: "server restarting"}
	case f.Type == protocol.TypeError && len(f.Ref) == 0 && f.Code == "unauthenticated":
		return &CloseError{Code: CloseSessionRevoked, Reason: f.ErrorText()}
	}
	return nil
}

// readLine returns the next line without its LF or CRLF; lines longer
// than limit are an error. The line is valid until the next read.
func readLine(r *bufio.Reader, limit int) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		long := append([]byte(nil), line...)
		for errors.Is(err, bufio.ErrBufferFull) && len(long) <= limit {
			line, err = r.ReadSlice('\n')
			long = append(long, line...)
		}
		line = long
		if len(line) > limit {
			return nil, fmt.Errorf("a line of the event stream is over %d bytes", limit)
		}
	}
	if err != nil {
		return nil, err // an unterminated last line is dropped, as the SSE spec says
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// exchange posts frame b and returns the answer in the response. A 204
// (a frame the server does not answer; the Conn's always have a ref, so
// it should not happen) counts as an ack.
func (l *sseLink) exchange(ctx context.Context, c *Conn, op string, id int64, b []byte) (ServerFrame, error) {
	if err := c.Err(); err != nil {
		return ServerFrame{}, fmt.Errorf("natter: %s: %w", op, err)
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(l.life, cancel)()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, l.client.base+"/v1/frames", bytes.NewReader(b))
	if err != nil {
		return ServerFrame{}, fmt.Errorf("natter: %s: %w", op, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set(connHeader, l.id)
	if tok := l.client.accessToken(); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := l.posts.Do(req)
	if err != nil {
		return ServerFrame{}, l.failed(ctx, c, op, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNoContent:
		return ServerFrame{Type: protocol.TypeAck, Ref: strconv.AppendInt(nil, id, 10)}, nil
	default:
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return ServerFrame{}, parseError(op, resp.StatusCode, resp.Header, body)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if err != nil {
		return ServerFrame{}, l.failed(ctx, c, op, err)
	}
	var f ServerFrame
	if err := json.Unmarshal(body, &f); err != nil {
		return ServerFrame{}, fmt.Errorf("natter: %s: decode answer: %w", op, err)
	}
	if len(f.Ref) > 0 && !refIs(f.Ref, id) {
		return ServerFrame{}, fmt.Errorf("natter: %s: the answer is for ref %s, not %d", op, f.Ref, id)
	}
	return f, nil
}

// failed explains a request that got no answer: ctx ended, the Conn
// ended (its *CloseError), or the network failed.
func (l *sseLink) failed(ctx context.Context, c *Conn, op string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("natter: %s: %w", op, ctx.Err())
	}
	if l.life.Err() != nil { // the Conn is ending: done closes soon
		<-c.done
		return fmt.Errorf("natter: %s: %w", op, c.Err())
	}
	return fmt.Errorf("natter: %s: %w", op, err)
}

// refIs reports whether ref (a JSON string or number) is id.
func refIs(ref json.RawMessage, id int64) bool {
	n, err := strconv.ParseInt(strings.Trim(string(ref), `"`), 10, 64)
	return err == nil && n == id
}
