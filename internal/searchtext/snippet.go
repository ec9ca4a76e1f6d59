package searchtext

import (
	"slices"
	"unicode"
	"unicode/utf8"
)

// Ellipsis marks the ends of a snippet that cut text off.
const Ellipsis = "…"

// Highlight is a part of a snippet that matched the query: the characters
// (Unicode code points) from Start up to, not including, End.
type Highlight struct{ Start, End int }

// Snippet returns the part of text, at most width characters (plus an
// Ellipsis at each end that cuts text off), that holds the most matches of
// terms (as QueryTerms returns them), with those matches as highlights in
// order. Highlights never overlap: matches that overlap or touch are one
// highlight. A text of at most width characters is returned whole. width
// below 20 means 20.
func Snippet(text string, terms []string, width int) (string, []Highlight) {
	width = max(width, 20)
	if !utf8.ValidString(text) {
		text = string([]rune(text)) // bad bytes become U+FFFD, one character each
	}
	spans := matches(text, terms)
	runes := []rune(text)
	n := len(runes)
	from, to := 0, n
	if n > width {
		from = window(runes, spans, width)
		to = from + width
	}
	prefix, suffix := "", ""
	if from > 0 {
		prefix = Ellipsis
	}
	if to < n {
		suffix = Ellipsis
	}
	shift := utf8.RuneCountInString(prefix) - from
	var hs []Highlight
	for _, s := range spans {
		start, end := max(s.Start, from), min(s.End, to)
		if start < end {
			hs = append(hs, Highlight{start + shift, end + shift})
		}
	}
	return prefix + string(runes[from:to]) + suffix, hs
}

// matches returns where terms match text, in characters, merged and in
// order.
func matches(text string, terms []string) []Highlight {
	pieces := scan(text)
	var spans []Highlight
	var pos, at int // the character position of byte offset at
	char := func(offset int) int {
		pos += utf8.RuneCountInString(text[at:offset])
		at = offset
		return pos
	}
	for i, p := range pieces {
		start := char(p.start)
		end := start + utf8.RuneCountInString(text[p.start:p.end])
		if slices.Contains(terms, p.term) {
			spans = append(spans, Highlight{start, end})
		}
		if i+1 < len(pieces) && adjacent(p, pieces[i+1]) && slices.Contains(terms, p.term+pieces[i+1].term) {
			spans = append(spans, Highlight{start, end + 1})
		}
	}
	slices.SortFunc(spans, func(a, b Highlight) int { return a.Start - b.Start })
	var merged []Highlight
	for _, s := range spans {
		if k := len(merged) - 1; k >= 0 && s.Start <= merged[k].End {
			merged[k].End = max(merged[k].End, s.End)
			continue
		}
		merged = append(merged, s)
	}
	return merged
}

// window returns where a width-character window of runes (longer than
// width) starts: the one that holds the most whole spans, beginning a
// little before its first span, moved back to the start of a word when one
// is near.
func window(runes []rune, spans []Highlight, width int) int {
	lead := width / 5
	best, bestCount := 0, 0
	for i, s := range spans {
		from := max(0, min(s.Start-lead, len(runes)-width))
		count := 0
		for _, t := range spans[i:] {
			if t.Start >= from && t.End <= from+width {
				count++
			}
		}
		if count > bestCount {
			best, bestCount = from, count
		}
	}
	for back := 0; back < 12 && best-back > 0; back++ {
		if unicode.IsSpace(runes[best-back-1]) {
			return best - back
		}
	}
	return best
}
