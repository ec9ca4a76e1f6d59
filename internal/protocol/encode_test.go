package protocol

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/natter-chat/natter/internal/chat"
)

func TestAppendMessageFrame_DecodesLikeEncodingJSON(t *testing.T) {
	texts := []string{
		"hello", "", `quote " and \ backslash`, "line\nbreak\ttab\r", "\x00\x01\x1f control",
		"emoji 😀 and ünïcödé", "bad utf8 \xff\xfe end", "js separators \u2028 \u2029", "<script>alert(1)</script>",
		strings.Repeat("long ", 1000),
	}
	for _, text := range texts {
		m := chat.Message{ID: 1234567890123, Conv: 42, Seq: 7, Sender: 99, ClientID: "c-" + text[:min(len(text), 3)], Text: text,
			SentAt: time.Date(2026, 11, 23, 18, 0, 0, 123_000_000, time.UTC)}
		frame := AppendMessageFrame(nil, &m, 0)
		var got struct {
			Type    string  `json:"type"`
			Message Message `json:"message"`
		}
		if err := json.Unmarshal(frame, &got); err != nil {
			t.Fatalf("frame %q is not valid JSON: %v", frame, err)
		}
		// encoding/json's round trip of the same value is the reference.
		ref, err := json.Marshal(FromMessage(m))
		if err != nil {
			t.Fatal(err)
		}
		var want Message
		if err := json.Unmarshal(ref, &want); err != nil {
			t.Fatal(err)
		}
		if got.Type != TypeMessage {
			t.Errorf("type = %q, want message", got.Type)
		}
		if diff := cmp.Diff(want, got.Message); diff != "" {
			t.Errorf("text %q: decoded message differs (-want +got):\n%s", text, diff)
		}
	}
}

func TestAppendAckFrame_EchoesRefAndDuplicate(t *testing.T) {
	m := chat.Message{ID: 1, Conv: 2, Seq: 3, Sender: 4, ClientID: "k", Text: "t", SentAt: time.Unix(0, 0)}
	var f ServerFrame
	if err := json.Unmarshal(AppendAckFrame(nil, []byte(`"r1"`), &m, true), &f); err != nil {
		t.Fatal(err)
	}
	msg, err := f.Msg()
	if err != nil || msg == nil {
		t.Fatalf("Msg() = %v, %v", msg, err)
	}
	if f.Type != TypeAck || string(f.Ref) != `"r1"` || !f.Duplicate || msg.Seq != 3 {
		t.Errorf("ack frame decoded as %+v / %+v", f, msg)
	}
}

func TestAppendErrorFrame_CarriesCodeAndText(t *testing.T) {
	var f ServerFrame
	if err := json.Unmarshal(AppendErrorFrame(nil, []byte(`17`), chat.CodeRateLimited, "slow \"down\"", 3), &f); err != nil {
		t.Fatal(err)
	}
	if f.Type != TypeError || f.Code != "rate_limited" || f.ErrorText() != `slow "down"` || f.RetryAfter != 3 || string(f.Ref) != "17" {
		t.Errorf("error frame decoded as %+v", f)
	}
}

func TestValidRef(t *testing.T) {
	for _, tc := range []struct {
		ref  string
		want bool
	}{{"", true}, {`"abc"`, true}, {"12", true}, {"-1", true}, {`{"a":1}`, false}, {`[1]`, false}, {`true`, false}, {`"` + strings.Repeat("x", 80) + `"`, false}} {
		if got := ValidRef([]byte(tc.ref)); got != tc.want {
			t.Errorf("ValidRef(%s) = %v, want %v", tc.ref, got, tc.want)
		}
	}
}

func BenchmarkAppendMessageFrame(b *testing.B) {
	m := chat.Message{ID: 1234567890123, Conv: 42, Seq: 7, Sender: 99, ClientID: "client-0001", Text: "a typical chat message of moderate length, with some words", SentAt: time.Now()}
	buf := make([]byte, 0, 512)
	for b.Loop() {
		buf = AppendMessageFrame(buf[:0], &m, m.Pos)
	}
}
