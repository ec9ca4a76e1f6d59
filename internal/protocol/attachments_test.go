package protocol

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/natter-chat/natter/internal/chat"
)

func TestAppendMessage_AttachmentsDecodeLikeEncodingJSON(t *testing.T) {
	m := chat.Message{ID: 5, Conv: 6, Seq: 1, Sender: 7, ClientID: "k", SentAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Attachments: []chat.Attachment{
			{ID: "abc", Name: `qu"ote.jpg`, ContentType: "image/jpeg", Size: 10, Width: 4, Height: 3, SHA256: "ff", ThumbnailKey: "t"},
			{ID: "def", Name: "doc.pdf", ContentType: "application/pdf", Size: 99, SHA256: "00"},
		}}
	var got Message
	if err := json.Unmarshal(AppendMessage(nil, &m), &got); err != nil {
		t.Fatal(err)
	}
	ref, _ := json.Marshal(FromMessage(m))
	var want Message
	_ = json.Unmarshal(ref, &want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("decoded message differs (-want +got):\n%s", diff)
	}
	if len(got.Attachments) != 2 || !got.Attachments[0].Thumbnail || got.Attachments[1].Thumbnail || got.Attachments[0].Width != 4 {
		t.Fatalf("attachments %+v", got.Attachments)
	}
}
