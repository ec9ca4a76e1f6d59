package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/alecthomas/kong"
)

// A config file's keys are flag names, written with dashes or
// underscores; flags given on the command line win over the file.
func TestConfigFileKeysAreFlagNames(t *testing.T) {
	path := filepath.Join(t.TempDir(), "natter.json")
	body := `{"addr":"127.0.0.1:9999","debug-addr":"127.0.0.1:9998","drain_jitter":"250ms","bus":"nats://127.0.0.1:4222","node-id":7}`
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	var c cli
	parser, err := kong.New(&c, kong.Name("natter"), kong.Configuration(jsonConfig), kong.Exit(func(int) { t.Fatal("kong exited") }))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parser.Parse([]string{"serve", "--config", path, "--addr", "127.0.0.1:7777"}); err != nil {
		t.Fatal(err)
	}
	s := c.Serve
	if s.Addr != "127.0.0.1:7777" || s.DebugAddr != "127.0.0.1:9998" || s.DrainJitter != 250*time.Millisecond || s.Bus != "nats://127.0.0.1:4222" || s.NodeID != 7 {
		t.Fatalf("parsed addr=%q debug-addr=%q drain-jitter=%s bus=%q node-id=%d", s.Addr, s.DebugAddr, s.DrainJitter, s.Bus, s.NodeID)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"addr":`), 0o600); err != nil {
		t.Fatal(err)
	}
	var c2 cli
	parser2, _ := kong.New(&c2, kong.Name("natter"), kong.Configuration(jsonConfig), kong.Exit(func(int) {}))
	if _, err := parser2.Parse([]string{"serve", "--config", bad}); err == nil {
		t.Fatal("a malformed config file was accepted")
	}
}

func TestParsePrefixes(t *testing.T) {
	got, err := parsePrefixes([]string{"10.0.0.0/8", " 192.0.2.7 ", "::ffff:172.16.0.0/108", "2001:db8::/32", ""})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.0/8", "192.0.2.7/32", "172.16.0.0/12", "2001:db8::/32"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("prefix %d = %s, want %s", i, got[i], want[i])
		}
	}
	if _, err := parsePrefixes([]string{"not an address"}); err == nil {
		t.Error("a bad entry was accepted")
	}
}
