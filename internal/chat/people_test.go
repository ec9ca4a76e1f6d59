package chat_test

import (
	"testing"

	"github.com/natter-chat/natter/internal/chat"
)

func TestFoldName(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"  Alice ", "alice"},
		{"Élodie", "elodie"},
		{"E\u0301lodie", "elodie"}, // decomposed: E + combining acute
		{"Straße", "strasse"},
		{"Łukasz Żółć", "lukasz zolc"},
		{"Ærøskøbing", "aeroskobing"},
		{"Ñandú", "nandu"},
		{"Дмитрий", "дмитрий"}, // other scripts are lowered, not transliterated
		{"%_", "%_"},
	} {
		if got := chat.FoldName(c.in); got != c.want {
			t.Errorf("FoldName(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
