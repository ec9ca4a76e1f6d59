package searchtext

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// MaxTermRunes is the longest term: longer words are cut to their first
// MaxTermRunes characters, in texts and queries alike.
const MaxTermRunes = 64

// piece is a word, or one character of a CJK run, of a text: its term and
// where it is in the text, in bytes.
type piece struct {
	term       string
	start, end int
	cjk        bool
}

// adjacent reports whether b is the CJK character right after a in the
// same run.
func adjacent(a, b piece) bool { return a.cjk && b.cjk && a.end == b.start }

// scan splits text into words and CJK characters, in text order.
// Everything else (spaces, punctuation, symbols, emoji) separates them.
func scan(text string) []piece {
	var out []piece
	wordStart := -1
	flush := func(end int) {
		if wordStart >= 0 {
			if term := foldWord(text[wordStart:end]); term != "" {
				out = append(out, piece{term: term, start: wordStart, end: end})
			}
			wordStart = -1
		}
	}
	for i, r := range text {
		switch {
		case isCJK(r):
			flush(i)
			size := utf8.RuneLen(r)
			if size < 0 {
				size = 1 // U+FFFD standing for a bad byte
			}
			if term := foldCJK(r); term != "" {
				out = append(out, piece{term: term, start: i, end: i + size, cjk: true})
			}
		case isWordRune(r):
			if wordStart < 0 {
				wordStart = i
			}
		default:
			flush(i)
		}
	}
	flush(len(text))
	return out
}

// isCJK reports whether r belongs to a script written without spaces
// between words that the index splits into bigrams.
func isCJK(r rune) bool {
	return unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul) ||
		r == 'ー' || r == 'ｰ' // the prolonged sound marks, which belong to Katakana words
}

func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.IsMark(r)
}

// isDiacritic reports whether r is a combining accent: the marks that
// decomposing an accented Latin, Greek or Cyrillic letter splits off.
// Other marks (Devanagari vowel signs, the Japanese voicing marks) carry
// meaning and stay.
func isDiacritic(r rune) bool {
	return (r >= 0x0300 && r <= 0x036F) || (r >= 0x1AB0 && r <= 0x1AFF) ||
		(r >= 0x1DC0 && r <= 0x1DFF) || (r >= 0x20D0 && r <= 0x20FF) || (r >= 0xFE20 && r <= 0xFE2F)
}

// letterFolds are letters that carry an accent or ligature decomposition
// does not split off.
var letterFolds = map[rune]string{
	'ø': "o", 'ł': "l", 'đ': "d", 'ħ': "h", 'ŧ': "t", 'ı': "i",
	'ß': "ss", 'æ': "ae", 'œ': "oe", 'þ': "th", 'ς': "σ",
}

// foldWord returns the term of a word: compatibility-decomposed (so
// full-width letters and ligatures become plain ones), accents removed,
// lower-cased, recomposed, cut to MaxTermRunes.
func foldWord(word string) string {
	var b strings.Builder
	for _, r := range norm.NFKD.String(word) {
		if isDiacritic(r) {
			continue
		}
		r = unicode.ToLower(r)
		if s, ok := letterFolds[r]; ok {
			b.WriteString(s)
			continue
		}
		if isWordRune(r) {
			b.WriteRune(r)
		}
	}
	term := norm.NFC.String(b.String())
	if utf8.RuneCountInString(term) > MaxTermRunes {
		term = string([]rune(term)[:MaxTermRunes])
	}
	return term
}

// foldCJK returns the term of one CJK character: its compatibility
// composition (half-width Katakana becomes full-width).
func foldCJK(r rune) string {
	return strings.ToLower(norm.NFKC.String(string(r)))
}

// Terms returns the terms a text is indexed under, in text order, with
// repeats (ranking counts them): each word's term, and for each CJK run
// every character and every pair of neighbouring characters.
func Terms(text string) []string {
	pieces := scan(text)
	out := make([]string, 0, len(pieces))
	for i, p := range pieces {
		out = append(out, p.term)
		if i+1 < len(pieces) && adjacent(p, pieces[i+1]) {
			out = append(out, p.term+pieces[i+1].term)
		}
	}
	return out
}

// QueryTerms returns the distinct terms a query must all match, in query
// order: each word's term, and for each CJK run its bigrams (or, for a
// single character, the character).
func QueryTerms(query string) []string {
	pieces := scan(query)
	var out []string
	add := func(t string) {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	for i, p := range pieces {
		next := i+1 < len(pieces) && adjacent(p, pieces[i+1])
		prev := i > 0 && adjacent(pieces[i-1], p)
		switch {
		case next:
			add(p.term + pieces[i+1].term)
		case !prev:
			add(p.term) // a word, or a CJK character on its own
		}
	}
	return out
}
