package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	osuser "os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Where the external programs live (Debian packages haproxy, nats-server
// and postgresql-15).
const (
	haproxyBin = "/usr/sbin/haproxy"
	natsBin    = "/usr/sbin/nats-server"
	pgBinDir   = "/usr/lib/postgresql/15/bin"
)

// requireTools skips the test when a program it needs is missing, or
// fails it when NATTER_TEST_E2E=1 says the suite must not skip.
func requireTools(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts PostgreSQL, NATS, HAProxy and three nodes; skipped with -short")
	}
	var missing []string
	for _, p := range []string{haproxyBin, natsBin, filepath.Join(pgBinDir, "initdb"), filepath.Join(pgBinDir, "postgres"), filepath.Join(pgBinDir, "pg_isready")} {
		if _, err := os.Stat(p); err != nil {
			missing = append(missing, p)
		}
	}
	if _, err := osuser.Lookup("postgres"); err != nil && os.Geteuid() == 0 {
		missing = append(missing, "system user postgres (PostgreSQL refuses to run as root)")
	}
	if len(missing) == 0 {
		return
	}
	msg := fmt.Sprintf("missing %s (apt-get install haproxy nats-server postgresql-15)", strings.Join(missing, ", "))
	if os.Getenv("NATTER_TEST_E2E") == "1" {
		t.Fatal(msg + "; NATTER_TEST_E2E=1 forbids skipping")
	}
	t.Skip(msg + "; set NATTER_TEST_E2E=1 to make this a failure")
}

// buildNatter compiles the natter binary without -race (the nodes would be
// too slow on a small machine) into dir and returns its path.
func buildNatter(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "natter")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/natter")
	cmd.Dir = ".." // the module root, seen from this package's directory
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go build ./cmd/natter: %v\n%s", err, out)
	}
	return bin
}

// freePort returns a loopback TCP port that was free a moment ago, for a
// child process to listen on. It is taken below Linux's ephemeral range
// (32768 and up by default), so that no outgoing connection of another
// test can be given it before the child binds it (PostgreSQL's is picked
// seconds before, as initdb runs first).
func freePort(t testing.TB) int {
	t.Helper()
	for range 100 {
		port := 20000 + rand.IntN(12000)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			l.Close()
			return port
		}
	}
	t.Fatal("no free loopback port between 20000 and 32000")
	return 0
}

// outputLog is a process's combined output: written to a file, and its
// last lines kept in memory for waiting on a line and for failure reports.
type outputLog struct {
	file *os.File

	mu      sync.Mutex
	partial []byte
	lines   []string // the last maxLines lines
	total   int      // lines ever written
}

const maxLines = 4000

// newOutputLog creates the file at path; it is closed when the test ends
// (after the processes writing to it were killed: cleanups run last
// registered first).
func newOutputLog(t testing.TB, path string) (*outputLog, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	o := &outputLog{file: f}
	t.Cleanup(func() {
		o.mu.Lock()
		defer o.mu.Unlock()
		_ = f.Close()
	})
	return o, nil
}

func (o *outputLog) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	_, _ = o.file.Write(p)
	o.partial = append(o.partial, p...)
	for {
		i := strings.IndexByte(string(o.partial), '\n')
		if i < 0 {
			break
		}
		o.lines = append(o.lines, string(o.partial[:i]))
		o.total++
		o.partial = o.partial[i+1:]
	}
	if len(o.lines) > maxLines {
		o.lines = append([]string(nil), o.lines[len(o.lines)-maxLines:]...)
	}
	return len(p), nil
}

// mark returns the number of lines written so far, for find.
func (o *outputLog) mark() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.total
}

// find returns the first line written after mark that contains s.
func (o *outputLog) find(mark int, s string) (string, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	first := o.total - len(o.lines)
	for i := max(mark-first, 0); i < len(o.lines); i++ {
		if strings.Contains(o.lines[i], s) {
			return o.lines[i], true
		}
	}
	return "", false
}

// tail returns the last n lines.
func (o *outputLog) tail(n int) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return strings.Join(o.lines[max(len(o.lines)-n, 0):], "\n")
}

// proc is a child process in a process group of its own, so that killing
// the group kills whatever it started too.
type proc struct {
	name string
	out  *outputLog
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has been waited for
	err  error         // how it ended; set before done is closed
}

// start runs argv as name, with its output appended to out, and as the
// user cred when cred is not nil. The process group is killed at the end
// of the test whatever happens.
func startProc(t testing.TB, name string, out *outputLog, cred *syscall.Credential, argv ...string) *proc {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: cred}
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.WaitDelay = 5 * time.Second // children holding the output pipe must not hold Wait
	fmt.Fprintf(out, "### %s: starting %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(argv, " "))
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, out: out, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		fmt.Fprintf(out, "### %s: exited: %v\n", time.Now().Format(time.RFC3339Nano), p.err)
		close(p.done)
	}()
	t.Cleanup(func() { p.kill() })
	return p
}

// kill SIGKILLs the process group and waits (at most 10s) for the process.
func (p *proc) kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
	}
}

// stop sends sig to the process alone (its own shutdown handling decides
// what happens to its children) and waits up to timeout for it to exit;
// then it kills the group.
func (p *proc) stop(sig syscall.Signal, timeout time.Duration) error {
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return nil
	case <-time.After(timeout):
		p.kill()
		return fmt.Errorf("%s did not exit within %s of %v; killed", p.name, timeout, sig)
	}
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// poll calls ok every 50ms until it returns nil or timeout passes, and
// returns its last error then. An error wrapped by giveUp ends it at once.
func poll(timeout time.Duration, ok func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := ok()
		if err == nil {
			return nil
		}
		var g hopeless
		if errors.As(err, &g) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// hopeless is an error that waiting longer cannot cure.
type hopeless struct{ error }

func giveUp(err error) error { return hopeless{err} }

// postgres is a private PostgreSQL 15 cluster in a temporary directory,
// reachable on 127.0.0.1:port, run as the postgres user when the test
// runs as root.
type postgres struct {
	t    testing.TB
	root string // owned by postgres: data/ and the socket
	port int
	cred *syscall.Credential // nil: as the test's own user
	out  *outputLog
	proc *proc
}

// startPostgres initializes a cluster (trust authentication, fsync on)
// and starts it.
func startPostgres(t testing.TB, artifacts string) *postgres {
	t.Helper()
	// Not t.TempDir: its parent is private to root, and postgres must
	// reach its data directory and socket.
	root, err := os.MkdirTemp("", "natter-e2e-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(root) })
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	var cred *syscall.Credential // PostgreSQL refuses root: run it as postgres then
	if os.Geteuid() == 0 {
		u, err := osuser.Lookup("postgres")
		if err != nil {
			t.Fatal(err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(root, uid, gid); err != nil {
			t.Fatal(err)
		}
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	out, err := newOutputLog(t, filepath.Join(artifacts, "postgres.log"))
	if err != nil {
		t.Fatal(err)
	}
	pg := &postgres{t: t, root: root, port: freePort(t), cred: cred, out: out}
	initdb := startProc(t, "initdb", out, pg.cred, filepath.Join(pgBinDir, "initdb"), "-D", filepath.Join(root, "data"),
		"-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync")
	select {
	case <-initdb.done:
		if initdb.err != nil {
			t.Fatalf("initdb: %v\n%s", initdb.err, out.tail(30))
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("initdb did not finish within 60s\n%s", out.tail(30))
	}
	pg.start()
	return pg
}

// URL is the connection URL of the cluster's postgres database.
func (pg *postgres) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", pg.port)
}

// start runs the postmaster and waits until it accepts connections.
func (pg *postgres) start() {
	pg.t.Helper()
	pg.proc = startProc(pg.t, "postgres", pg.out, pg.cred, filepath.Join(pgBinDir, "postgres"), "-D", filepath.Join(pg.root, "data"),
		"-p", strconv.Itoa(pg.port), "-c", "listen_addresses=127.0.0.1", "-k", pg.root, "-c", "fsync=on", "-c", "max_connections=200")
	err := poll(30*time.Second, func() error {
		if pg.proc.exited() {
			return giveUp(errors.New("postgres exited"))
		}
		out, err := exec.Command(filepath.Join(pgBinDir, "pg_isready"), "-q", "-U", "postgres", "-d", "postgres", "-h", "127.0.0.1", "-p", strconv.Itoa(pg.port)).CombinedOutput()
		if err != nil {
			return fmt.Errorf("pg_isready: %v %s", err, out)
		}
		return nil
	})
	if err != nil {
		pg.t.Fatalf("postgres not ready within 30s: %v\n%s", err, pg.out.tail(30))
	}
}

// stopFast is `pg_ctl stop -m fast`: SIGINT to the postmaster, which
// disconnects every client, checkpoints and exits.
func (pg *postgres) stopFast() error { return pg.proc.stop(syscall.SIGINT, 30*time.Second) }

// natsServer is a private nats-server with JetStream, restartable on the
// same port and store directory.
type natsServer struct {
	t     testing.TB
	port  int
	store string
	out   *outputLog
	proc  *proc
}

func startNATS(t testing.TB, artifacts string) *natsServer {
	t.Helper()
	out, err := newOutputLog(t, filepath.Join(artifacts, "nats.log"))
	if err != nil {
		t.Fatal(err)
	}
	n := &natsServer{t: t, port: freePort(t), store: t.TempDir(), out: out}
	n.start()
	return n
}

// URL is the server's client URL.
func (n *natsServer) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

// start runs the server and waits until it says it is ready.
func (n *natsServer) start() {
	n.t.Helper()
	mark := n.out.mark()
	n.proc = startProc(n.t, "nats-server", n.out, nil, natsBin, "-a", "127.0.0.1", "-p", strconv.Itoa(n.port), "-js", "-sd", n.store)
	err := poll(30*time.Second, func() error {
		if n.proc.exited() {
			return giveUp(errors.New("nats-server exited"))
		}
		if _, ok := n.out.find(mark, "Server is ready"); !ok {
			return errors.New("no \"Server is ready\" line yet")
		}
		return nil
	})
	if err != nil {
		n.t.Fatalf("nats-server not ready within 30s: %v\n%s", err, n.out.tail(30))
	}
}

// node is one `natter serve` process in cluster mode.
type node struct {
	name string
	addr string // host:port it listens on
	out  *outputLog
	proc *proc
}

// cluster is the system under test: PostgreSQL, NATS, three nodes and
// HAProxy in front of them.
type cluster struct {
	pg      *postgres
	nats    *natsServer
	nodes   []*node
	haproxy *proc
	URL     string // HAProxy's address: the only one clients use
}

// startCluster starts every part of a cluster named name, with its own
// PostgreSQL schema, and returns once HAProxy forwards to a ready node.
func startCluster(t *testing.T, bin, name, artifacts string, nodes int) *cluster {
	t.Helper()
	c := &cluster{pg: startPostgres(t, artifacts), nats: startNATS(t, artifacts)}
	t.Cleanup(func() {
		if t.Failed() {
			c.dumpTails(t)
		}
	})
	type started struct {
		n   *node
		err error
	}
	ch := make(chan started, nodes)
	for i := range nodes {
		out, err := newOutputLog(t, filepath.Join(artifacts, fmt.Sprintf("node%d.log", i)))
		if err != nil {
			t.Fatal(err)
		}
		n := &node{name: fmt.Sprintf("node%d", i), out: out}
		n.proc = startProc(t, n.name, out, nil, bin, "serve", "--addr", "127.0.0.1:0", "--data", t.TempDir(),
			"--store", c.pg.URL(), "--store-schema", name, "--bus", c.nats.URL(), "--cluster", name,
			"--node-id=-1", "--drain-jitter", "500ms", "--log-format", "json")
		c.nodes = append(c.nodes, n)
		go func() {
			err := poll(60*time.Second, func() error {
				if n.proc.exited() {
					return giveUp(errors.New("exited"))
				}
				line, ok := out.find(0, "listening on http://")
				if !ok {
					return errors.New("not listening yet")
				}
				n.addr = strings.TrimPrefix(strings.Fields(line[strings.Index(line, "http://"):])[0], "http://")
				return nil
			})
			ch <- started{n, err}
		}()
	}
	for range nodes {
		if s := <-ch; s.err != nil {
			t.Fatalf("%s did not start: %v\n%s", s.n.name, s.err, s.n.out.tail(30))
		}
	}
	c.startHAProxy(t, artifacts)
	return c
}

func (c *cluster) startHAProxy(t *testing.T, artifacts string) {
	t.Helper()
	port := freePort(t)
	var servers strings.Builder
	for _, n := range c.nodes {
		fmt.Fprintf(&servers, "    server %s %s check\n", n.name, n.addr)
	}
	cfg := fmt.Sprintf(`global
    log stderr format raw local0 info
    maxconn 4000

defaults
    mode http
    log global
    option httplog
    option dontlog-normal
    option redispatch
    retries 3
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h

frontend natter
    bind 127.0.0.1:%d
    default_backend nodes

backend nodes
    balance leastconn
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 500ms fall 2 rise 1
%s`, port, servers.String())
	path := filepath.Join(artifacts, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := newOutputLog(t, filepath.Join(artifacts, "haproxy.log"))
	if err != nil {
		t.Fatal(err)
	}
	c.haproxy = startProc(t, "haproxy", out, nil, haproxyBin, "-f", path, "-db")
	c.URL = fmt.Sprintf("http://127.0.0.1:%d", port)
	hc := &http.Client{Timeout: 2 * time.Second}
	err = poll(30*time.Second, func() error {
		if c.haproxy.exited() {
			return giveUp(errors.New("haproxy exited"))
		}
		resp, err := hc.Get(c.URL + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET /readyz through HAProxy: %s", resp.Status)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("HAProxy not forwarding within 30s: %v\n%s", err, out.tail(30))
	}
}

// waitReady waits until every node still running answers /readyz with 200
// directly (not through HAProxy).
func (c *cluster) waitReady(ctx context.Context) error {
	hc := &http.Client{Timeout: time.Second}
	for _, n := range c.nodes {
		if n.proc.exited() {
			continue
		}
		err := poll(30*time.Second, func() error {
			if n.proc.exited() {
				return nil
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.addr+"/readyz", nil)
			resp, err := hc.Do(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s /readyz: %s", n.name, resp.Status)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// dumpTails logs the last lines of every process's output.
func (c *cluster) dumpTails(t *testing.T) {
	for _, n := range c.nodes {
		t.Logf("--- %s (%s) output, last lines:\n%s", n.name, n.addr, n.out.tail(40))
	}
	if c.haproxy != nil {
		t.Logf("--- haproxy output, last lines:\n%s", c.haproxy.out.tail(40))
	}
	t.Logf("--- nats-server output, last lines:\n%s", c.nats.out.tail(15))
	t.Logf("--- postgres output, last lines:\n%s", c.pg.out.tail(15))
}
