package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/natter-chat/natter/client"
)

// source says how a message reached a client.
type source string

const (
	srcLive   source = "live"    // a pushed message frame
	srcAck    source = "ack"     // the ack of the client's own send
	srcResume source = "resume"  // the catch-up right after (re)connecting
	srcGap    source = "gapfill" // a catch-up after a gap in the live stream
	srcFinal  source = "final"   // the last catch-up, after every sender stopped
)

// fromCatchUp reports whether s is one of the catch-ups (sync requests).
func (s source) fromCatchUp() bool { return s == srcResume || s == srcGap || s == srcFinal }

// workloadOptions shape the traffic.
type workloadOptions struct {
	Users     int           // one WebSocket connection each
	SendEvery time.Duration // pause between two sends of one user
	Password  string
}

// workload is the clients of one scenario: users, their conversations,
// and the switches that stop them.
type workload struct {
	t         *testing.T
	base      string // HAProxy
	opts      workloadOptions
	artifacts string
	start     time.Time
	http      *http.Client

	users []*user
	convs []conversation

	stopSends chan struct{} // closed: no new sends (retries go on)
	final     chan struct{} // closed: every sender is done; catch up one last time
	quit      chan struct{} // closed: close the connections and return
	runners   sync.WaitGroup
}

// conversation is one group and the indexes of its members in users.
type conversation struct {
	id      string
	title   string
	members []int
}

// newWorkload registers the users and creates the groups, through base.
// Group k has members k, k+4 and k+8 (mod users), and k+1 when k is even:
// every user is in two or three groups of three or four members.
func newWorkload(ctx context.Context, t *testing.T, base, artifacts string, groups int, opts workloadOptions) *workload {
	t.Helper()
	w := &workload{t: t, base: base, opts: opts, artifacts: artifacts, start: time.Now(), http: client.NewHTTPClient(),
		stopSends: make(chan struct{}), final: make(chan struct{}), quit: make(chan struct{})}
	for i := range opts.Users {
		u := &user{w: w, idx: i, name: fmt.Sprintf("user%02d", i), views: make(map[string]*convView),
			acks: make(map[string]ackRecord), gaps: make(chan string, 64), reconnectFrame: make(chan reconnectFrame, 1), finalDone: make(chan struct{})}
		u.cl = client.New(base, client.Options{HTTPClient: w.http, Device: "e2e"})
		a, err := u.cl.Register(ctx, u.name, opts.Password)
		if err != nil {
			t.Fatalf("register %s: %v", u.name, err)
		}
		u.id = a.User.ID
		f, err := os.Create(filepath.Join(artifacts, u.name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		u.file = bufio.NewWriter(f)
		t.Cleanup(func() {
			u.mu.Lock()
			_ = u.file.Flush()
			u.mu.Unlock()
			_ = f.Close()
		})
		w.users = append(w.users, u)
	}
	n := opts.Users
	for k := range groups {
		members := []int{k % n, (k + 4) % n, (k + 8) % n}
		if k%2 == 0 {
			members = append(members, (k+1)%n)
		}
		var ids []string
		for _, m := range members[1:] {
			ids = append(ids, w.users[m].id)
		}
		c := conversation{title: fmt.Sprintf("group %d", k), members: members}
		conv, err := w.users[members[0]].cl.CreateGroup(ctx, c.title, ids)
		if err != nil {
			t.Fatalf("create %s: %v", c.title, err)
		}
		c.id = conv.ID
		w.convs = append(w.convs, c)
		for _, m := range members {
			u := w.users[m]
			u.convs = append(u.convs, c.id)
			u.views[c.id] = &convView{applied: make(map[int64]received), held: make(map[int64]received)}
		}
	}
	return w
}

// run starts every user's connection loop.
func (w *workload) run(ctx context.Context) {
	for _, u := range w.users {
		w.runners.Go(func() { u.run(ctx) })
	}
}

func (w *workload) since() float64 { return time.Since(w.start).Seconds() }

// waitSendsSettled stops new sends and waits until every send made so far
// has been acknowledged (its final truth known), or timeout.
func (w *workload) waitSendsSettled(timeout time.Duration) error {
	close(w.stopSends)
	return poll(timeout, func() error {
		var open []string
		for _, u := range w.users {
			u.mu.Lock()
			if len(u.unacked) > 0 {
				open = append(open, fmt.Sprintf("%s: %d (first %s)", u.name, len(u.unacked), u.unacked[0].cid))
			}
			u.mu.Unlock()
		}
		if len(open) > 0 {
			return fmt.Errorf("sends without an ack: %s", strings.Join(open, "; "))
		}
		return nil
	})
}

// waitFinalCatchUp asks every client for its last catch-up and waits until
// all have done it, or timeout.
func (w *workload) waitFinalCatchUp(timeout time.Duration) error {
	close(w.final)
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	expired := false
	var late []string
	for _, u := range w.users {
		if !expired {
			select {
			case <-u.finalDone:
			case <-timer.C:
				expired = true
			}
		}
		if !closed(u.finalDone) {
			late = append(late, u.name)
		}
	}
	if len(late) > 0 {
		return fmt.Errorf("no final catch-up within %s by %s", timeout, strings.Join(late, ", "))
	}
	return nil
}

// stop closes every connection and waits (at most timeout) for the users'
// goroutines.
func (w *workload) stop(timeout time.Duration) error {
	close(w.quit)
	done := make(chan struct{})
	go func() { w.runners.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("client goroutines still running %s after quit", timeout)
	}
}

func closed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// received is one copy of a message as a client got it.
type received struct {
	seq     int64
	id      string
	src     source
	session int
}

// convView is what one client holds of one conversation.
type convView struct {
	last    int64              // every seq 1..last is applied
	applied map[int64]received // the first copy of each applied seq
	held    map[int64]received // arrived ahead of a missing seq: not applied yet
	order   []int64            // seqs in the order they were applied

	liveSession int   // the connection maxLive belongs to
	maxLive     int64 // highest seq received live on that connection
}

// ackRecord is what an ack said about a client_id.
type ackRecord struct {
	conv, id string
	seq      int64
}

// pendingSend is a send without an ack yet: new, in flight, or failed and
// waiting for a retry with the same client_id.
type pendingSend struct {
	conv, cid string
	attempts  int
}

// userStats are a client's counters.
type userStats struct {
	overlap       int // copies of an applied seq inside a resume window or from a catch-up
	duplicated    int // copies of an applied seq in the steady live stream
	liveReordered int // live messages below one already received live on the same connection
	gapFilled     int // messages applied from a catch-up after a live gap
	conflicts     int // a copy with another id than the one held at that seq
	sendErrors    int // failed send attempts
	sessions      int // connections opened
	reconnects    int // reconnect frames seen by OnEvent (one queued behind the close can be dropped by Conn.Close)
	disconnects   int // connections the server or the network ended
	ackConflicts  int // two acks for one client_id that disagree
}

// user is one client: a login, one WebSocket connection at a time, a
// sender and the state it applied.
type user struct {
	w              *workload
	idx            int
	name           string
	id             string
	cl             *client.Client
	convs          []string // ids of its conversations
	gaps           chan string
	finalDone      chan struct{}       // closed after the final catch-up
	reconnectFrame chan reconnectFrame // the last reconnect frame not yet acted on

	mu          sync.Mutex
	file        *bufio.Writer // guarded by mu
	lines       []string      // the log, also kept in memory; guarded by mu
	views       map[string]*convView
	resumeUntil time.Time // copies before this are resume overlap
	unacked     []*pendingSend
	nextSend    int
	acks        map[string]ackRecord
	stats       userStats
	fatal       error // the client gave up (could not reconnect)
}

// logf appends a line to the client's log; u.mu must be held.
func (u *user) logfLocked(format string, args ...any) {
	line := fmt.Sprintf("t=%.3f ", u.w.since()) + fmt.Sprintf(format, args...)
	u.lines = append(u.lines, line)
	_, _ = u.file.WriteString(line + "\n")
}

func (u *user) logf(format string, args ...any) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.logfLocked(format, args...)
}

// linesMatching returns the log lines that contain s, at most n.
func (u *user) linesMatching(s string, n int) []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []string
	for _, l := range u.lines {
		if strings.Contains(l, s) {
			out = append(out, u.name+": "+l)
			if len(out) == n {
				break
			}
		}
	}
	return out
}

// apply takes one copy of a message into the client's state, applying
// messages of a conversation strictly in seq order.
func (u *user) apply(m client.Message, src source, session int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	v := u.views[m.Conv]
	if v == nil {
		u.logfLocked("recv conv=%s seq=%d id=%s src=%s session=%d result=FOREIGN (not a member)", m.Conv, m.Seq, m.ID, src, session)
		u.stats.conflicts++
		return
	}
	note := ""
	if src == srcLive {
		if session != v.liveSession {
			v.liveSession, v.maxLive = session, 0
		}
		if m.Seq < v.maxLive {
			u.stats.liveReordered++
			note = fmt.Sprintf(" LIVE-REORDER(after live seq %d)", v.maxLive)
		}
		v.maxLive = max(v.maxLive, m.Seq)
	}
	prev, ok := v.applied[m.Seq]
	if !ok {
		prev, ok = v.held[m.Seq]
	}
	if ok {
		result := "overlap"
		switch {
		case prev.id != m.ID:
			u.stats.conflicts++
			result = "CONFLICT(held id " + prev.id + ")"
		case src.fromCatchUp() || prev.src.fromCatchUp() || time.Now().Before(u.resumeUntil):
			u.stats.overlap++
		default:
			u.stats.duplicated++
			result = fmt.Sprintf("DUPLICATE(first from %s in session %d)", prev.src, prev.session)
		}
		u.logfLocked("recv conv=%s seq=%d id=%s src=%s session=%d result=%s%s", m.Conv, m.Seq, m.ID, src, session, result, note)
		return
	}
	v.held[m.Seq] = received{seq: m.Seq, id: m.ID, src: src, session: session}
	for {
		r, ok := v.held[v.last+1]
		if !ok {
			break
		}
		delete(v.held, r.seq)
		v.applied[r.seq] = r
		v.order = append(v.order, r.seq)
		v.last = r.seq
		if r.src == srcGap {
			u.stats.gapFilled++
		}
	}
	result := "applied"
	if len(v.held) > 0 {
		result = fmt.Sprintf("held(last applied %d)", v.last)
		if src == srcLive {
			result += " GAP"
			select {
			case u.gaps <- m.Conv:
			default: // the runner has enough to do; the final catch-up fills it anyway
			}
		}
	}
	u.logfLocked("recv conv=%s seq=%d id=%s src=%s session=%d result=%s%s", m.Conv, m.Seq, m.ID, src, session, result, note)
}

// lastApplied returns the highest seq of conv the client holds without a gap.
func (u *user) lastApplied(conv string) int64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.views[conv].last
}

// hasGap reports whether messages of conv wait behind a missing one.
func (u *user) hasGap(conv string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.views[conv].held) > 0
}

// onEvent handles a pushed frame. It does no I/O: catch-ups and
// reconnects are the runner's.
func (u *user) onEvent(session int, f client.ServerFrame) {
	switch f.Type {
	case client.TypeMessage:
		m, err := f.Msg()
		if err != nil || m == nil {
			u.logf("bad message frame session=%d: %v", session, err)
			return
		}
		u.apply(*m, srcLive, session)
	case client.TypeReconnect:
		u.mu.Lock()
		u.stats.reconnects++
		u.logfLocked("reconnect-frame session=%d after_ms=%d", session, f.AfterMS)
		u.mu.Unlock()
		select {
		case <-u.reconnectFrame: // an older one, from an earlier connection
		default:
		}
		select {
		case u.reconnectFrame <- reconnectFrame{session: session, after: time.Duration(f.AfterMS) * time.Millisecond}:
		default:
		}
	case client.TypeError:
		u.logf("error-frame session=%d code=%s message=%s", session, f.Code, f.ErrorText())
	}
}

// run connects, catches up and sends until the workload quits,
// reconnecting through HAProxy with backoff and jitter whenever the
// connection ends.
func (u *user) run(ctx context.Context) {
	for !closed(u.w.quit) && ctx.Err() == nil {
		conn, session, err := u.connect(ctx)
		if err != nil {
			u.mu.Lock()
			u.fatal = err
			u.logfLocked("GIVING UP: %v", err)
			u.mu.Unlock()
			return
		}
		delay := u.serve(ctx, conn, session)
		select {
		case <-time.After(delay):
		case <-u.w.quit:
		case <-ctx.Done():
		}
	}
}

// connect opens a connection with backoff and jitter: at most 60
// attempts, each waiting up to 2s more than the last.
func (u *user) connect(ctx context.Context) (*client.Conn, int, error) {
	backoff := 100 * time.Millisecond
	var last error
	for attempt := 0; attempt < 60; attempt++ {
		u.mu.Lock()
		u.stats.sessions++
		session := u.stats.sessions
		u.resumeUntil = time.Now().Add(time.Hour) // until the resume catch-up is done
		u.mu.Unlock()
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		conn, err := u.cl.Connect(cctx, client.ConnOptions{
			Transport:   client.TransportWebSocket,
			OnEvent:     func(f client.ServerFrame) { u.onEvent(session, f) },
			EventBuffer: 4096,
		})
		cancel()
		if err == nil {
			u.logf("connected session=%d", session)
			return conn, session, nil
		}
		last = err
		u.logf("connect-failed session=%d err=%v", session, err)
		if closed(u.w.quit) || ctx.Err() != nil {
			return nil, 0, fmt.Errorf("stopped while connecting: %w", err)
		}
		select {
		case <-time.After(backoff/2 + rand.N(backoff/2+1)):
		case <-u.w.quit:
		case <-ctx.Done():
		}
		backoff = min(2*backoff, 2*time.Second)
	}
	return nil, 0, fmt.Errorf("could not connect in 60 attempts: %w", last)
}

// serve runs one connection: the resume catch-up, the sender, gap fills
// and the final catch-up. It returns when the connection ended (with how
// long to wait before reconnecting) or the workload quits.
func (u *user) serve(ctx context.Context, conn *client.Conn, session int) time.Duration {
	sctx, cancel := context.WithCancel(ctx)
	var sender sync.WaitGroup
	defer func() {
		cancel()
		conn.Close()
		sender.Wait()
	}()
	if err := u.catchUpAll(sctx, conn, session, srcResume); err != nil {
		u.logf("resume-failed session=%d err=%v", session, err)
		return u.closed(conn, session)
	}
	u.mu.Lock()
	u.resumeUntil = time.Now().Add(time.Second)
	u.mu.Unlock()
	sender.Go(func() { u.sendLoop(sctx, conn, session) })
	final := u.w.final
	for {
		select {
		case <-conn.Done():
			return u.closed(conn, session)
		case rf := <-u.reconnectFrame:
			if rf.session != session {
				continue // the connection it was about is gone already
			}
			select {
			case <-conn.Done():
			case <-time.After(3 * time.Second):
				u.logf("still open 3s after the reconnect frame session=%d; closing", session)
			}
			u.closed(conn, session)
			return min(rf.after, 2*time.Second)
		case conv := <-u.gaps:
			// A live message came ahead of a missing one: an ack or a
			// push may still be on its way, so look again a moment later.
			select {
			case <-time.After(100 * time.Millisecond):
			case <-conn.Done():
				continue
			}
			if !u.hasGap(conv) {
				continue
			}
			if err := u.catchUp(sctx, conn, conv, session, srcGap); err != nil {
				u.logf("gapfill-failed session=%d conv=%s err=%v", session, conv, err)
				return u.closed(conn, session)
			}
		case <-final:
			if err := u.catchUpAll(sctx, conn, session, srcFinal); err != nil {
				u.logf("final-catch-up-failed session=%d err=%v", session, err)
				return u.closed(conn, session)
			}
			u.logf("final catch-up done session=%d", session)
			if !closed(u.finalDone) {
				close(u.finalDone)
			}
			final = nil
		case <-u.w.quit:
			return 0
		case <-ctx.Done():
			return 0
		}
	}
}

// closed logs how conn ended and returns how long to wait before
// reconnecting: the delay of a reconnect frame the connection got, or a
// short jitter.
func (u *user) closed(conn *client.Conn, session int) time.Duration {
	u.mu.Lock()
	select {
	case <-conn.Done(): // not closed by this side: Close comes later
		u.stats.disconnects++
	default:
	}
	u.logfLocked("closed session=%d code=%d err=%v", session, conn.CloseCode(), conn.Err())
	u.mu.Unlock()
	select {
	case rf := <-u.reconnectFrame:
		if rf.session == session {
			return min(rf.after, 2*time.Second)
		}
	default:
	}
	return u.jitter()
}

// reconnectFrame is a reconnect frame received on connection session.
type reconnectFrame struct {
	session int
	after   time.Duration
}

func (u *user) jitter() time.Duration { return 50*time.Millisecond + rand.N(250*time.Millisecond) }

// catchUpAll catches up every conversation of the user.
func (u *user) catchUpAll(ctx context.Context, conn *client.Conn, session int, src source) error {
	for _, conv := range u.convs {
		if err := u.catchUp(ctx, conn, conv, session, src); err != nil {
			return err
		}
	}
	return nil
}

// catchUp fetches every message of conv after the highest seq applied.
func (u *user) catchUp(ctx context.Context, conn *client.Conn, conv string, session int, src source) error {
	after := u.lastApplied(conv)
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	msgs, err := conn.CatchUp(cctx, conv, after)
	for _, m := range msgs {
		u.apply(m, src, session)
	}
	if err == nil {
		u.logf("catch-up conv=%s src=%s session=%d after=%d got=%d", conv, src, session, after, len(msgs))
	}
	return err
}

// nextPending returns the oldest send without an ack, after making a new
// one when there is none and sends have not been stopped; nil when there
// is nothing to send.
func (u *user) nextPending() *pendingSend {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.unacked) == 0 {
		if closed(u.w.stopSends) {
			return nil
		}
		p := &pendingSend{conv: u.convs[u.nextSend%len(u.convs)], cid: fmt.Sprintf("%s-%d", u.name, u.nextSend)}
		u.nextSend++
		u.unacked = append(u.unacked, p)
	}
	p := u.unacked[0]
	p.attempts++
	u.logfLocked("send cid=%s conv=%s attempt=%d", p.cid, p.conv, p.attempts)
	return p
}

// sendLoop sends one message every SendEvery on conn, oldest unacked
// first, until ctx ends or the connection is gone.
func (u *user) sendLoop(ctx context.Context, conn *client.Conn, session int) {
	tick := time.NewTicker(u.w.opts.SendEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		p := u.nextPending()
		if p == nil {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		m, dup, err := conn.Send(sctx, p.conv, p.cid, "text of "+p.cid)
		cancel()
		if err == nil {
			u.acked(p, m, dup, session)
			u.apply(m, srcAck, session)
			continue
		}
		code := client.ErrorCode(err)
		u.mu.Lock()
		u.stats.sendErrors++
		u.logfLocked("send-error cid=%s conv=%s session=%d code=%q err=%v", p.cid, p.conv, session, code, err)
		u.mu.Unlock()
		var wait time.Duration
		switch {
		case errors.Is(err, client.ErrClosed), ctx.Err() != nil:
			return // the runner reconnects; the send is retried on the next connection
		case code == "rate_limited":
			var e *client.Error
			wait = time.Second
			if errors.As(err, &e) && e.RetryAfter > 0 {
				wait = e.RetryAfter
			}
		default: // unavailable, a timeout, anything else: its fate is unknown
			wait = 200*time.Millisecond + rand.N(300*time.Millisecond)
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return
		}
	}
}

// acked records an ack and forgets the pending send.
func (u *user) acked(p *pendingSend, m client.Message, dup bool, session int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.logfLocked("ack cid=%s conv=%s id=%s seq=%d duplicate=%v session=%d attempt=%d", p.cid, m.Conv, m.ID, m.Seq, dup, session, p.attempts)
	a := ackRecord{conv: m.Conv, id: m.ID, seq: m.Seq}
	if old, ok := u.acks[p.cid]; ok && old != a {
		u.stats.ackConflicts++
		u.logfLocked("ACK-CONFLICT cid=%s first=%+v now=%+v", p.cid, old, a)
	}
	if m.Conv != p.conv || m.ClientID != p.cid {
		u.stats.ackConflicts++
		u.logfLocked("ACK-CONFLICT cid=%s conv=%s acked as conv=%s client_id=%s", p.cid, p.conv, m.Conv, m.ClientID)
	}
	u.acks[p.cid] = a
	for i, q := range u.unacked {
		if q == p {
			u.unacked = append(u.unacked[:i], u.unacked[i+1:]...)
			break
		}
	}
}
