package protocol

// SearchResponse is a page of message search results, best first.
// NextCursor, absent on the last page, asks for the next one.
type SearchResponse struct {
	Results    []SearchResult `json:"results"`
	NextCursor string         `json:"next_cursor,omitempty"`
}

// SearchResult is one matching message and the part of its text to show.
// Each highlight is a [start, end) range of Snippet in Unicode code
// points (not bytes, not UTF-16 units) that matched the query; ranges are
// in order and never overlap. Snippet is plain text (never HTML); "…"
// marks an end that cuts the message's text off.
type SearchResult struct {
	Message    Message  `json:"message"`
	Snippet    string   `json:"snippet"`
	Highlights [][2]int `json:"highlights"`
	Rank       float64  `json:"rank"` // higher is better; comparable within one search only
}
