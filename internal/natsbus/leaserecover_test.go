package natsbus

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// A refresh that finds the key's revision moved (here: the same holder
// name written again, as when a refresh was applied but its answer lost)
// recovers by reading the key. When that read fails for a while (it times
// out, as on a busy server), the lease is not lost: only another holder's
// name in the key loses it. Once reads get through, the lease adopts the
// key's new revision and stays valid.
func TestLease_RecoveryFailingTransientlyKeepsTheLease(t *testing.T) {
	eachServer(t, false, func(t *testing.T, env *testEnv) {
		u, err := url.Parse(env.url)
		if err != nil {
			t.Fatal(err)
		}
		proxy := startReadDropper(t, u.Host)
		nc, err := nats.Connect("nats://"+proxy.ln.Addr().String(), nats.Name(t.Name()), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		// A long TTL: the reads fail for a few refreshes only, far from
		// the point where the lease would rightly expire.
		l, err := AcquireNodeID(leaseCtx(t), nc, LeaseOptions{Bucket: env.bucket, Want: 7, TTL: 40 * time.Second, Refresh: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		kv := env.leaseBucket(t)

		proxy.dropping.Store(true)
		rev, err := kv.Put(leaseCtx(t), "node.7", []byte(l.Holder()))
		if err != nil {
			t.Fatal(err)
		}
		notLost := func() {
			t.Helper()
			select {
			case <-l.Lost():
				t.Fatal("the lease was lost although no other holder has its key")
			default:
			}
		}
		// Only recovery reads the key once the lease is held.
		waitUntil(t, 20*time.Second, "two recoveries to fail", func() bool {
			notLost()
			return proxy.dropped.Load() >= 2
		})
		proxy.dropping.Store(false)
		var countsFrom time.Time
		waitUntil(t, 20*time.Second, "the lease to adopt the key's new revision", func() bool {
			notLost()
			l.mu.Lock()
			defer l.mu.Unlock()
			countsFrom = l.lastOK
			return l.revision >= rev
		})
		notLost()
		// The lease may count only from a write of its key: the key
		// expires a TTL after its last write, and a lease that counted
		// from later (the recovery) would outlive its key, and another
		// node could take the id while this one still used it.
		if e, err := kv.Get(leaseCtx(t), "node.7"); err != nil {
			t.Fatal(err)
		} else if e.Created().Before(countsFrom) {
			t.Errorf("after the recovery the lease counts from %s, but its key was last written at %s, earlier",
				countsFrom.Format(time.StampMicro), e.Created().Format(time.StampMicro))
		}
		if !l.Valid() {
			t.Fatal("the recovered lease is not valid")
		}
		if e, err := kv.Get(leaseCtx(t), "node.7"); err != nil || string(e.Value()) != l.Holder() {
			t.Fatalf("the key after the recovery: %v, %v; want the holder's name", e, err)
		}
	})
}

// readDropper is a TCP proxy in front of a NATS server that, while
// dropping is set, swallows the client's JetStream message reads (direct
// gets and stream message gets, which is what a key-value Get sends), so
// that they time out as on an overloaded server; everything else passes.
type readDropper struct {
	ln       net.Listener
	target   string
	dropping atomic.Bool
	dropped  atomic.Int64 // reads swallowed

	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func startReadDropper(t *testing.T, target string) *readDropper {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &readDropper{ln: ln, target: target}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		_ = ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			_ = c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *readDropper) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = client.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, client, server)
		p.mu.Unlock()
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			_, _ = io.Copy(client, server)
			_ = client.Close()
		}()
		go func() {
			defer p.wg.Done()
			p.filter(server, client)
			_ = server.Close()
		}()
	}
}

// filter copies the client's protocol to the server one operation at a
// time, leaving out the reads to drop. A PUB or HPUB line ends with the
// size of the payload that follows it (plus CRLF); every other operation
// is one line.
func (p *readDropper) filter(server io.Writer, client io.Reader) {
	r := bufio.NewReader(client)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return
		}
		fields := bytes.Fields(line)
		if len(fields) < 3 || !(bytes.EqualFold(fields[0], []byte("PUB")) || bytes.EqualFold(fields[0], []byte("HPUB"))) {
			if _, err := server.Write(line); err != nil {
				return
			}
			continue
		}
		n, err := strconv.Atoi(string(fields[len(fields)-1]))
		if err != nil {
			return
		}
		payload := make([]byte, n+2)
		if _, err := io.ReadFull(r, payload); err != nil {
			return
		}
		subject := fields[1]
		if p.dropping.Load() && (bytes.HasPrefix(subject, []byte("$JS.API.DIRECT.GET.")) || bytes.HasPrefix(subject, []byte("$JS.API.STREAM.MSG.GET."))) {
			p.dropped.Add(1)
			continue
		}
		if _, err := server.Write(append(line, payload...)); err != nil {
			return
		}
	}
}
