package app

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/internal/auth"
	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/wsapi"
)

// heldStore is the store as the service sees it, with a hook that holds
// (and may fail) one chosen read of a user's sync stream, as a slow or
// failing store would.
type heldStore struct {
	chat.Store

	mu   sync.Mutex
	hold func(user chat.UserID, after int64) bool // which read to hold; nil for none
	held chan struct{}                            // closed when that read is held
	out  chan error                               // what the held read returns (nil: it reads)
}

// holdRead makes the next read of user's sync stream after a cursor that
// matches wait, until release is called with the error it returns (nil:
// it reads).
func (s *heldStore) holdRead(user chat.UserID, match func(after int64) bool) (held <-chan struct{}, release func(error)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hold = func(u chat.UserID, after int64) bool { return u == user && match(after) }
	s.held, s.out = make(chan struct{}), make(chan error, 1)
	return s.held, func(err error) { s.out <- err }
}

func (s *heldStore) ListChanges(ctx context.Context, user chat.UserID, after int64, limit int) (chat.Changes, error) {
	s.mu.Lock()
	hold := s.hold != nil && s.hold(user, after)
	held, out := s.held, s.out
	if hold {
		s.hold = nil
	}
	s.mu.Unlock()
	if hold {
		close(held)
		select {
		case err := <-out:
			if err != nil {
				return chat.Changes{}, err
			}
		case <-ctx.Done():
			return chat.Changes{}, ctx.Err()
		}
	}
	return s.Store.ListChanges(ctx, user, after, limit)
}

// startHeldNode runs an embedded node whose service reads the sync
// stream through the returned heldStore.
func startHeldNode(t *testing.T) (*App, *heldStore, string) {
	t.Helper()
	var hs *heldStore
	a, err := New(t.Context(), Config{
		Addr: "127.0.0.1:0", DataDir: t.TempDir(), DrainJitter: 20 * time.Millisecond, ShutdownTimeout: 5 * time.Second,
		Hasher: auth.HasherOptions{Memory: 64, Time: 1}, SendRate: -1, RESTRate: -1,
		WS:        wsapi.Options{FrameRate: 1e6},
		storeTest: func(s chat.Store) chat.Store { hs = &heldStore{Store: s}; return hs },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("node stopped with error: %v", err)
		}
	})
	return a, hs, "http://" + a.Addr()
}

// eventStream reads GET /v1/events: every frame, until the stream ends.
type eventStream struct {
	frames chan client.ServerFrame // closed when the stream ends
}

func openEventStream(t *testing.T, url, token, query string) *eventStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/v1/events"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET /v1/events: %v", err)
	}
	if res.StatusCode != http.StatusOK {
		res.Body.Close()
		cancel()
		t.Fatalf("GET /v1/events: %d, want 200", res.StatusCode)
	}
	s := &eventStream{frames: make(chan client.ServerFrame, 1<<12)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(s.frames)
		r := bufio.NewReaderSize(res.Body, 1<<20)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			data, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "data: ")
			if !ok {
				continue // the blank line after an event, or a ping comment
			}
			var f client.ServerFrame
			if err := json.Unmarshal([]byte(data), &f); err != nil {
				t.Errorf("event %q is not a JSON frame: %v", data, err)
				return
			}
			s.frames <- f
		}
	}()
	t.Cleanup(func() {
		cancel()
		res.Body.Close()
		<-done
	})
	return s
}

// next returns the next frame, failing the test when none comes.
func (s *eventStream) next(t *testing.T) client.ServerFrame {
	t.Helper()
	select {
	case f, ok := <-s.frames:
		if !ok {
			t.Fatal("the event stream ended")
		}
		return f
	case <-time.After(20 * time.Second):
		t.Fatal("no event within 20s")
	}
	return client.ServerFrame{}
}

// rest returns the frames up to the end of the stream, failing the test
// when it is still open after 20 s.
func (s *eventStream) rest(t *testing.T) []client.ServerFrame {
	t.Helper()
	var out []client.ServerFrame
	deadline := time.After(20 * time.Second)
	for {
		select {
		case f, ok := <-s.frames:
			if !ok {
				return out
			}
			out = append(out, f)
		case <-deadline:
			kinds := make([]string, len(out))
			for i, f := range out {
				kinds[i] = f.Type
			}
			t.Fatalf("the event stream is still open 20s later, after frames %v", kinds)
		}
	}
}

// replayScene is a user several pages of changes behind (more than one
// replay page of messages from a contact), with a WebSocket open besides,
// which tells when the node's hub has handed a live message on.
type replayScene struct {
	a      *App
	store  *heldStore
	url    string
	alice  *client.Client
	aliceU chat.UserID
	bob    *client.Client
	conv   string
	sent   map[string]int64 // every message bob sent: id → pos
	order  []string         // their ids in pos order
	ws     *frameLog        // alice's WebSocket
}

func newReplayScene(t *testing.T) *replayScene {
	t.Helper()
	a, hs, url := startHeldNode(t)
	sc := &replayScene{a: a, store: hs, url: url, sent: make(map[string]int64)}
	ctx := t.Context()
	sc.alice = client.New(url, client.Options{})
	res, err := sc.alice.Register(ctx, "alice", "a long enough passphrase")
	if err != nil {
		t.Fatal(err)
	}
	id, err := chat.ParseID("user", res.User.ID)
	if err != nil {
		t.Fatal(err)
	}
	sc.aliceU = chat.UserID(id)
	sc.bob = client.New(url, client.Options{})
	bobRes, err := sc.bob.Register(ctx, "bob", "a long enough passphrase")
	if err != nil {
		t.Fatal(err)
	}
	conv, err := sc.alice.CreateDirect(ctx, bobRes.User.ID)
	if err != nil {
		t.Fatal(err)
	}
	sc.conv = conv.ID

	// Two replay pages (of 500 changes) and a bit.
	const behind = 520
	var wg sync.WaitGroup
	var mu sync.Mutex
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < behind; i += 8 {
				r, err := sc.bob.Send(ctx, sc.conv, fmt.Sprintf("old-%d", i), "while alice was away")
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				sc.sent[r.Message.ID] = r.Message.Pos
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	sc.ws = &frameLog{}
	conn, err := sc.alice.Connect(ctx, client.ConnOptions{Transport: client.TransportWebSocket, OnEvent: sc.ws.add, EventBuffer: 1 << 12})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return sc
}

// sendLive sends n messages and returns once alice's WebSocket got the
// last: the hub hands a conversation's events on one at a time, so every
// earlier one is then queued on each of alice's connections.
func (sc *replayScene) sendLive(t *testing.T, n int) {
	t.Helper()
	var last string
	for i := range n {
		r, err := sc.bob.Send(t.Context(), sc.conv, fmt.Sprintf("live-%d", i), "during the replay")
		if err != nil {
			t.Fatal(err)
		}
		sc.sent[r.Message.ID] = r.Message.Pos
		last = r.Message.ID
	}
	sc.ws.waitMessage(t, last)
}

// checkNothingSkipped asserts that the frames a client got skip no
// change: every message at or below the highest cursor among them is in
// them. Then a catch-up from that cursor returns every other message,
// once each.
func (sc *replayScene) checkNothingSkipped(t *testing.T, frames []client.ServerFrame) {
	t.Helper()
	got := make(map[string]bool)
	var cursor int64
	for _, f := range frames {
		cursor = max(cursor, f.Cursor)
		for _, c := range f.Changes {
			if c.Message != nil {
				got[c.Message.ID] = true
			}
		}
		if m, _ := f.Msg(); f.Type == client.TypeMessage && m != nil {
			got[m.ID] = true
		}
	}
	ids := make([]string, 0, len(sc.sent))
	for id := range sc.sent {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b string) int { return cmp.Compare(sc.sent[a], sc.sent[b]) })
	var skipped, want []string
	for _, id := range ids {
		switch {
		case sc.sent[id] <= cursor && !got[id]:
			skipped = append(skipped, id)
		case sc.sent[id] > cursor:
			want = append(want, id)
		}
	}
	if len(skipped) > 0 {
		t.Errorf("the stream gave cursor %d but never sent %d of the messages at or below it (first at pos %d): a client resuming from it loses them",
			cursor, len(skipped), sc.sent[skipped[0]])
	}

	var caughtUp []string
	for {
		page, err := sc.alice.Changes(t.Context(), cursor, 0)
		if err != nil {
			t.Fatalf("catch-up from cursor %d: %v", cursor, err)
		}
		for _, c := range page.Changes {
			if c.Message != nil {
				caughtUp = append(caughtUp, c.Message.ID)
			}
		}
		if !page.HasMore {
			break
		}
		cursor = page.Cursor
	}
	if !slices.Equal(caughtUp, want) {
		t.Errorf("catch-up returned %d messages, want the %d after the cursor, once each", len(caughtUp), len(want))
	}
}

// An event stream told to reconnect (the node missed events) while its
// replay is still under way ends with the reconnect frame right after
// the last page it wrote: the live frames queued meanwhile, whose cursors
// are past the pages not replayed, are not written. The client resumes
// from the cursor it has and gets everything.
func TestSSE_ReconnectDuringTheReplaySkipsNoChange(t *testing.T) {
	sc := newReplayScene(t)
	held, release := sc.store.holdRead(sc.aliceU, func(after int64) bool { return after == 0 })
	s := openEventStream(t, sc.url, sc.alice.Tokens().AccessToken, "?cursor=0")
	if f := s.next(t); f.Type != "ready" {
		t.Fatalf("first event %s, want ready", f.Type)
	}
	select {
	case <-held:
	case <-time.After(20 * time.Second):
		t.Fatal("the replay never read its first page")
	}
	sc.sendLive(t, 3)
	sc.a.ws.Reconnect(20 * time.Millisecond) // returns once every stream is ending
	release(nil)

	frames := s.rest(t)
	if len(frames) == 0 || frames[len(frames)-1].Type != client.TypeReconnect {
		t.Fatalf("the stream ended with %d frames, want the reconnect frame last", len(frames))
	}
	for _, f := range frames {
		if f.Type == client.TypeMessage {
			m, _ := f.Msg()
			t.Errorf("a live message (pos %d, cursor %d) came after an unfinished replay", m.Pos, f.Cursor)
		}
	}
	sc.checkNothingSkipped(t, frames)
}

// When the store fails during the replay, the stream sends the error and
// ends: the live frames queued meanwhile would carry the client's cursor
// past the changes not replayed. The client reconnects and resumes from
// its cursor.
func TestSSE_FailedReplayEndsTheStreamWithoutLiveFrames(t *testing.T) {
	sc := newReplayScene(t)
	held, release := sc.store.holdRead(sc.aliceU, func(after int64) bool { return after > 0 })
	s := openEventStream(t, sc.url, sc.alice.Tokens().AccessToken, "?cursor=0")
	if f := s.next(t); f.Type != "ready" {
		t.Fatalf("first event %s, want ready", f.Type)
	}
	select {
	case <-held:
	case <-time.After(20 * time.Second):
		t.Fatal("the replay never read its second page")
	}
	sc.sendLive(t, 3)
	release(chat.Errorf(chat.CodeUnavailable, "the store is down"))

	frames := s.rest(t)
	if i := slices.IndexFunc(frames, func(f client.ServerFrame) bool { return f.Type == client.TypeError }); i < 0 || frames[i].Code != string(chat.CodeUnavailable) {
		t.Errorf("the failed replay sent no unavailable error frame")
	} else if i != len(frames)-1 {
		t.Errorf("after the replay's error frame the stream sent %d more frames (first %s), want it to end", len(frames)-1-i, frames[i+1].Type)
	}
	sc.checkNothingSkipped(t, frames)
}
