package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/natter-chat/natter/client"
)

// buildBinary compiles natter once per test into a temp dir.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "natter")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type proc struct {
	cmd *exec.Cmd
	URL string
}

// startServer runs `natter serve` on a free loopback port with dataDir and
// returns once it listens. The process is killed when the test ends.
func startServer(t *testing.T, bin, dataDir string) *proc {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--data", dataDir, "--log-format", "json", "--drain-jitter", "100ms")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() { // keep draining so the server never blocks on stderr
			if line := sc.Text(); !sent && strings.Contains(line, "listening on http://") {
				lines <- line
				sent = true
			}
		}
	}()
	select {
	case line := <-lines:
		addr := strings.Fields(line[strings.Index(line, "http://"):])[0]
		return &proc{cmd: cmd, URL: addr}
	case <-time.After(30 * time.Second):
		t.Fatal("server did not start listening within 30s")
	}
	return nil
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestSIGKILL_EveryAcknowledgedMessageSurvives kills the server process
// with SIGKILL while sends are in flight, restarts it on the same data
// directory, and checks that every acknowledged message is stored with
// the seq and id its ack gave, with no gap and no duplicate.
func TestSIGKILL_EveryAcknowledgedMessageSurvives(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the real binary; skipped with -short")
	}
	bin := buildBinary(t)
	dataDir := t.TempDir()
	srv := startServer(t, bin, dataDir)

	alice := client.New(srv.URL, client.Options{})
	bob := client.New(srv.URL, client.Options{})
	if _, err := alice.Register(ctxT(t), "alice", "a long enough passphrase"); err != nil {
		t.Fatal(err)
	}
	b, err := bob.Register(ctxT(t), "bob", "a long enough passphrase")
	if err != nil {
		t.Fatal(err)
	}
	direct, err := alice.CreateDirect(ctxT(t), b.User.ID)
	if err != nil {
		t.Fatal(err)
	}
	group, err := alice.CreateGroup(ctxT(t), "crash test", []string{b.User.ID})
	if err != nil {
		t.Fatal(err)
	}
	convs := []string{direct.ID, group.ID}

	type ack struct {
		conv, id string
		seq      int64
	}
	var mu sync.Mutex
	acked := make(map[string]ack) // client_id → what the ack said
	var unknown []string          // sends whose fate the client never learned
	const workers = 8
	stop := make(chan struct{})
	enough := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for w := range workers {
		conn, err := alice.Connect(ctxT(t), client.ConnOptions{Transport: client.TransportWebSocket})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			defer conn.Close()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				conv := convs[(w+i)%len(convs)]
				cid := fmt.Sprintf("w%d-%d", w, i)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				m, _, err := conn.Send(ctx, conv, cid, "message "+cid)
				cancel()
				mu.Lock()
				if err != nil {
					unknown = append(unknown, conv+"|"+cid)
					mu.Unlock()
					return // the connection is gone (the server was killed)
				}
				acked[cid] = ack{conv: m.Conv, id: m.ID, seq: m.Seq}
				if len(acked) >= 400 {
					once.Do(func() { close(enough) })
				}
				mu.Unlock()
			}
		})
	}
	select {
	case <-enough:
	case <-time.After(60 * time.Second):
		t.Fatal("fewer than 400 acks within 60s")
	}
	if err := srv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = srv.cmd.Wait()
	close(stop)
	wg.Wait()
	t.Logf("killed the server after %d acknowledged sends (%d in flight)", len(acked), len(unknown))

	// Restart on the same data directory. The old access token must still
	// work: the signing key is kept in the data dir too.
	srv2 := startServer(t, bin, dataDir)
	alice2 := client.New(srv2.URL, client.Options{})
	alice2.SetTokens(alice.Tokens())

	// Retrying the sends of unknown fate with their client_id must never
	// make a second copy.
	for _, u := range unknown {
		conv, cid, _ := strings.Cut(u, "|")
		if _, err := alice2.Send(ctxT(t), conv, cid, "message "+cid); err != nil {
			t.Fatalf("retry %s: %v", cid, err)
		}
	}
	total := 0
	for _, conv := range convs {
		var msgs []client.Message
		after := int64(0)
		for {
			page, err := alice2.History(ctxT(t), conv, client.HistoryQuery{After: after, Forward: true, Limit: 500})
			if err != nil {
				t.Fatal(err)
			}
			msgs = append(msgs, page.Messages...)
			if !page.HasMore {
				break
			}
			after = page.Messages[len(page.Messages)-1].Seq
		}
		seen := make(map[string]bool)
		for i, m := range msgs {
			if m.Seq != int64(i+1) {
				t.Fatalf("conversation %s: message %d has seq %d: a gap or reorder after the crash", conv, i, m.Seq)
			}
			if seen[m.ClientID] {
				t.Fatalf("conversation %s: client_id %s stored twice", conv, m.ClientID)
			}
			seen[m.ClientID] = true
			if a, ok := acked[m.ClientID]; ok && (a.id != m.ID || a.seq != m.Seq || a.conv != conv) {
				t.Fatalf("%s was acked as %+v but is stored as id %s seq %d in %s", m.ClientID, a, m.ID, m.Seq, conv)
			}
		}
		for cid, a := range acked {
			if a.conv == conv && !seen[cid] {
				t.Fatalf("acknowledged message %s (seq %d) is missing after the crash", cid, a.seq)
			}
		}
		total += len(msgs)
	}
	t.Logf("after restart: %d acknowledged, %d stored (retried %d of unknown fate), lost 0", len(acked), total, len(unknown))
}

// TestSIGTERM_ShutsDownCleanly checks that the binary exits 0 on SIGTERM,
// telling connected clients to reconnect first.
func TestSIGTERM_ShutsDownCleanly(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the real binary; skipped with -short")
	}
	bin := buildBinary(t)
	srv := startServer(t, bin, t.TempDir())
	c := client.New(srv.URL, client.Options{})
	if _, err := c.Register(ctxT(t), "carol", "a long enough passphrase"); err != nil {
		t.Fatal(err)
	}
	frames := make(chan client.ServerFrame, 16)
	conn, err := c.Connect(ctxT(t), client.ConnOptions{OnEvent: func(f client.ServerFrame) { frames <- f }, Transport: client.TransportWebSocket})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case f := <-frames:
		if f.Type != client.TypeReconnect {
			t.Fatalf("first frame after SIGTERM is %q, want reconnect", f.Type)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no reconnect frame after SIGTERM")
	}
	select {
	case <-conn.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("connection not closed after SIGTERM")
	}
	if code := conn.CloseCode(); code != 1001 {
		t.Errorf("close code %d, want 1001 (going away)", code)
	}
	err = srv.cmd.Wait()
	if err != nil {
		t.Fatalf("natter exited with %v after SIGTERM, want a clean exit", err)
	}
	if st, ok := srv.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && st.ExitStatus() != 0 {
		t.Fatalf("exit status %d", st.ExitStatus())
	}
	_ = os.Remove(bin)
}
