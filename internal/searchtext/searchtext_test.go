package searchtext_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/natter-chat/natter/internal/searchtext"
)

func TestTerms(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       []string
	}{
		{"words are lower-cased and split at punctuation", "Hello, World! don't", []string{"hello", "world", "don", "t"}},
		{"accents are folded", "Café crème Ångström naïve", []string{"cafe", "creme", "angstrom", "naive"}},
		{"decomposed accents are folded too", "Cafe\u0301", []string{"cafe"}},
		{"letters without a decomposition are folded", "Øre Łódź Straße", []string{"ore", "lodz", "strasse"}},
		{"full-width letters become plain ones", "ＣＡＦＥ", []string{"cafe"}},
		{"digits are words", "room 42b", []string{"room", "42b"}},
		{"CJK runs give characters and bigrams", "東京都", []string{"東", "東京", "京", "京都", "都"}},
		{"a CJK run ends at a non-CJK character", "東京 tower", []string{"東", "東京", "京", "tower"}},
		{"Katakana with the prolonged sound mark", "ラーメン", []string{"ラ", "ラー", "ー", "ーメ", "メ", "メン", "ン"}},
		{"half-width Katakana becomes full-width", "ｶﾀ", []string{"カ", "カタ", "タ"}},
		{"emoji and symbols separate", "a🙂b", []string{"a", "b"}},
		{"Devanagari vowel signs stay", "नमस्ते", []string{"नमस्ते"}},
		{"empty text", "", []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, searchtext.Terms(tc.text)); diff != "" {
				t.Errorf("Terms(%q) (-want +got):\n%s", tc.text, diff)
			}
		})
	}
	t.Run("long words are cut to MaxTermRunes", func(t *testing.T) {
		got := searchtext.Terms(strings.Repeat("é", 100))
		if len(got) != 1 || got[0] != strings.Repeat("e", searchtext.MaxTermRunes) {
			t.Errorf("Terms = %q", got)
		}
	})
}

func TestQueryTerms(t *testing.T) {
	for _, tc := range []struct {
		name, query string
		want        []string
	}{
		{"words, folded and distinct", "Café cafe CAFÉ au lait", []string{"cafe", "au", "lait"}},
		{"a CJK run becomes its bigrams", "東京都", []string{"東京", "京都"}},
		{"a single CJK character stays", "東 x", []string{"東", "x"}},
		{"nothing searchable", " !? 🙂 ", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, searchtext.QueryTerms(tc.query)); diff != "" {
				t.Errorf("QueryTerms(%q) (-want +got):\n%s", tc.query, diff)
			}
		})
	}
	t.Run("every query term of a text is among the text's terms", func(t *testing.T) {
		for _, text := range []string{"私は東京都に住んでいます", "Crème brûlée à Paris", "서울에서 만나요"} {
			indexed := map[string]bool{}
			for _, term := range searchtext.Terms(text) {
				indexed[term] = true
			}
			for _, term := range searchtext.QueryTerms(text) {
				if !indexed[term] {
					t.Errorf("%q: query term %q is not indexed", text, term)
				}
			}
		}
	})
}

func TestSnippet(t *testing.T) {
	hl := func(s string, hs []searchtext.Highlight) []string {
		r := []rune(s)
		var out []string
		for _, h := range hs {
			out = append(out, string(r[h.Start:h.End]))
		}
		return out
	}
	t.Run("short text is whole, with accented matches highlighted", func(t *testing.T) {
		text := "Un café? Oui, deux CAFES. Cafe!"
		snip, hs := searchtext.Snippet(text, searchtext.QueryTerms("cafe"), 100)
		if snip != text {
			t.Errorf("snippet = %q, want the whole text", snip)
		}
		if diff := cmp.Diff([]string{"café", "Cafe"}, hl(snip, hs)); diff != "" {
			t.Errorf("highlighted (-want +got):\n%s", diff)
		}
	})
	t.Run("CJK bigram matches merge into one highlight", func(t *testing.T) {
		text := "私は東京都に住んでいます"
		snip, hs := searchtext.Snippet(text, searchtext.QueryTerms("東京都"), 100)
		if diff := cmp.Diff([]string{"東京都"}, hl(snip, hs)); diff != "" {
			t.Errorf("highlighted (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]searchtext.Highlight{{2, 5}}, hs); diff != "" {
			t.Errorf("highlights are code point ranges (-want +got):\n%s", diff)
		}
	})
	t.Run("long text is cut around the matches with ellipses", func(t *testing.T) {
		text := strings.Repeat("filler words here ", 20) + "the needle is here " + strings.Repeat("more filler text ", 20)
		snip, hs := searchtext.Snippet(text, []string{"needle"}, 60)
		if !strings.HasPrefix(snip, searchtext.Ellipsis) || !strings.HasSuffix(snip, searchtext.Ellipsis) {
			t.Errorf("snippet %q lacks ellipses", snip)
		}
		if n := len([]rune(snip)); n > 62 {
			t.Errorf("snippet has %d characters, want at most 62", n)
		}
		if diff := cmp.Diff([]string{"needle"}, hl(snip, hs)); diff != "" {
			t.Errorf("highlighted (-want +got):\n%s", diff)
		}
	})
	t.Run("no match: the start of the text", func(t *testing.T) {
		text := strings.Repeat("abc ", 50)
		snip, hs := searchtext.Snippet(text, []string{"zzz"}, 40)
		if !strings.HasPrefix(snip, "abc") || len(hs) != 0 {
			t.Errorf("snippet %q, highlights %v", snip, hs)
		}
	})
	t.Run("invalid UTF-8 does not panic", func(t *testing.T) {
		snip, hs := searchtext.Snippet("caf\xff cafe", []string{"cafe"}, 40)
		if diff := cmp.Diff([]string{"cafe"}, hl(snip, hs)); diff != "" {
			t.Errorf("highlighted (-want +got):\n%s", diff)
		}
	})
}
