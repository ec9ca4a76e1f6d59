// Package searchtext turns message text into the terms of the full-text
// search index, turns queries into terms the same way, and cuts snippets
// with highlights out of matching text.
//
// Invariants: a text and a query that contain the same word, whatever its
// case, accents or width (café, CAFE, ｃａｆｅ), yield the same term;
// words are runs of letters, digits and marks; runs of CJK characters
// (Han, Hiragana, Katakana, Hangul), which are written without spaces,
// are indexed as single characters and character bigrams, so that any
// word of two or more characters inside a longer run is found by its
// bigrams. The package depends on nothing but the standard library and
// golang.org/x/text, so every index backend and the use-cases share it.
package searchtext
