package loadtest

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestCheckTarget(t *testing.T) {
	for _, tc := range []struct {
		addr        string
		allowRemote bool
		ok          bool
	}{
		{"http://127.0.0.1:8080", false, true},
		{"http://127.9.8.7", false, true},
		{"http://localhost:8080", false, true},
		{"https://LOCALHOST.:8443", false, true},
		{"http://[::1]:8080", false, true},
		{"http://[::ffff:127.0.0.1]:8080", false, true},
		{"http://10.0.0.5:8080", false, false},
		{"http://128.0.0.1", false, false},
		{"http://example.com", false, false},
		{"http://localhost.example.com", false, false},
		{"http://127.0.0.1.nip.io", false, false},
		{"http://[::2]:8080", false, false},
		{"http://example.com", true, true},
		{"ws://127.0.0.1:8080", false, false},
		{"127.0.0.1:8080", false, false},
		{"http://", true, false},
	} {
		err := checkTarget(tc.addr, tc.allowRemote)
		if (err == nil) != tc.ok {
			t.Errorf("checkTarget(%q, allowRemote=%v) = %v, want ok=%v", tc.addr, tc.allowRemote, err, tc.ok)
		}
	}
}

func TestOptions_ValidateReportsEveryProblem(t *testing.T) {
	if err := (Options{}).withDefaults().validate(); err != nil {
		t.Errorf("zero Options are invalid: %v", err)
	}
	bad := Options{Scenario: "burst", Addr: "http://example.com", Senders: -1, Rate: -2, LocalAddrs: []string{"eth0"}}
	err := bad.withDefaults().validate()
	if err == nil {
		t.Fatal("invalid options accepted")
	}
	for _, want := range []string{"burst", "not loopback", "senders", "rate", "eth0"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestRun_RefusesRemoteTargetBeforeAnyRequest(t *testing.T) {
	var out bytes.Buffer
	err := Run(context.Background(), Options{Addr: "http://192.0.2.1:8080"}, &out)
	if err == nil || !strings.Contains(err.Error(), "not loopback") {
		t.Errorf("Run = %v, want a refusal", err)
	}
	if out.Len() != 0 {
		t.Errorf("Run printed %q before refusing", out.String())
	}
}

// With several nodes, every node must pass the loopback check, and each
// receiver lands on another node than its sender.
func TestOptions_Nodes(t *testing.T) {
	o := Options{Nodes: []string{"http://127.0.0.1:1", "http://10.0.0.5:2"}}.withDefaults()
	if err := o.validate(); err == nil || !strings.Contains(err.Error(), "10.0.0.5") {
		t.Fatalf("a remote node was accepted: %v", err)
	}
	o = Options{Nodes: []string{"http://127.0.0.1:1", "http://127.0.0.2:2", "http://127.0.0.3:3"}}.withDefaults()
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	r := &run{opts: o}
	for i := range 6 {
		if s, rc := r.nodeFor("s", i), r.nodeFor("r", i); s == rc {
			t.Errorf("sender %d and its receiver both on %s", i, s)
		}
	}
	if o.Addr != o.Nodes[0] {
		t.Errorf("Addr %q, want the first node", o.Addr)
	}
}
