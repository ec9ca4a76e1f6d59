package core

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/searchtext"
)

// SearchOptions configures message search. Zero values are documented per
// field.
type SearchOptions struct {
	// Interval is how long the indexer waits, once it has caught up,
	// before it looks for changed messages again: the longest a change
	// takes to become searchable (plus the indexing). Zero means 1s.
	Interval time.Duration
	// Batch is the most messages indexed in one transaction. Zero means 200.
	Batch          int
	MaxQueryBytes  int // longest query; zero means 256 bytes
	MaxQueryTerms  int // most distinct terms in a query; zero means 16
	SnippetRunes   int // longest snippet, in characters, without the ellipses; zero means 160
	MaxResultDepth int // results beyond this rank are never returned (paging stops); zero means 1,000
}

func (o *SearchOptions) fill() {
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.Batch <= 0 {
		o.Batch = 200
	}
	if o.MaxQueryBytes <= 0 {
		o.MaxQueryBytes = 256
	}
	if o.MaxQueryTerms <= 0 {
		o.MaxQueryTerms = 16
	}
	if o.SnippetRunes <= 0 {
		o.SnippetRunes = 160
	}
	if o.MaxResultDepth <= 0 {
		o.MaxResultDepth = 1000
	}
}

// Indexer keeps a chat.SearchIndex current. It follows the change
// positions of messages from the index's own cursor: each batch reads the
// messages changed after the cursor, indexes their terms (removing deleted
// messages) and moves the cursor, in one transaction of the index. It runs
// beside the appender and is never called by a send: a send waits only
// for its own commit. Indexers on several nodes may share an index; the
// cursor's compare-and-set lets one of them write each batch.
type Indexer struct {
	idx  chat.SearchIndex
	opts SearchOptions
	log  *slog.Logger
}

// NewIndexer returns an indexer of idx; log nil means discard.
func NewIndexer(idx chat.SearchIndex, opts SearchOptions, log *slog.Logger) *Indexer {
	opts.fill()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Indexer{idx: idx, opts: opts, log: log}
}

// IndexOnce indexes one batch of changed messages and returns how many it
// indexed: 0 when the index is current, or when another indexer moved the
// cursor first (nothing is then written).
func (x *Indexer) IndexOnce(ctx context.Context) (int, error) {
	from, err := x.idx.SearchCursor(ctx)
	if err != nil {
		return 0, err
	}
	msgs, err := x.idx.ListChangedMessages(ctx, from, x.opts.Batch)
	if err != nil || len(msgs) == 0 {
		return 0, err
	}
	docs := make([]chat.SearchDoc, len(msgs))
	for i, m := range msgs {
		docs[i] = chat.SearchDoc{Message: m.ID, Conv: m.Conv, Pos: m.Pos}
		if m.DeletedAt.IsZero() {
			docs[i].Terms = searchtext.Terms(m.Text)
		}
	}
	ok, err := x.idx.UpdateSearchIndex(ctx, from, msgs[len(msgs)-1].Pos, docs)
	if err != nil || !ok {
		return 0, err
	}
	return len(msgs), nil
}

// CatchUp indexes batches until the index is current (as of some moment
// during the call).
func (x *Indexer) CatchUp(ctx context.Context) error {
	for {
		n, err := x.IndexOnce(ctx)
		if err != nil || n < x.opts.Batch {
			return err
		}
	}
}

// Run indexes until ctx is done: a full batch is followed at once by the
// next, otherwise the indexer waits Interval. Failures are logged and
// retried after Interval.
func (x *Indexer) Run(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		n, err := x.IndexOnce(ctx)
		if err != nil && ctx.Err() == nil {
			x.log.Warn("search indexing failed", "err", err)
		}
		wait := x.opts.Interval
		if err == nil && n == x.opts.Batch {
			wait = 0
		}
		timer.Reset(wait)
	}
}

// SearchRequest is a search as a client asks it.
type SearchRequest struct {
	Query  string              // the words to find; all must match
	Conv   chat.ConversationID // only this conversation; 0 for all of the caller's
	Limit  int                 // results per page; zero means 20, at most MaxSearchLimit
	Cursor string              // "" for the first page, else the NextCursor of the previous one
}

// MaxSearchLimit bounds one page of search results.
const MaxSearchLimit = 100

// SearchResult is one matching message with the part of its text to
// show: Snippet, whose matching words Highlights locate.
type SearchResult struct {
	Message    chat.Message
	Snippet    string
	Highlights []searchtext.Highlight
	Rank       float64 // higher is better; comparable within one search only
}

// SearchPage is a page of results, best first. NextCursor is "" on the
// last page.
type SearchPage struct {
	Results    []SearchResult
	NextCursor string
}

// Search finds the messages the caller can read now that match every word
// of the query: in one conversation (the caller must be a member) or in
// all of the caller's conversations. Deleted messages are never found; an
// edit is reflected once the indexer has seen it.
// Errors: invalid_argument (query, limit, cursor), not_found (conversation),
// unavailable (no search index on this node, or the store).
func (s *Service) Search(ctx context.Context, p Principal, req SearchRequest) (SearchPage, error) {
	if s.search == nil {
		return SearchPage{}, chat.Errorf(chat.CodeUnavailable, "message search is not enabled on this server")
	}
	o := s.opts.Search
	terms, err := s.searchTerms(req.Query)
	if err != nil {
		return SearchPage{}, err
	}
	switch {
	case req.Limit < 0 || req.Limit > MaxSearchLimit:
		return SearchPage{}, chat.Errorf(chat.CodeInvalidArgument, "limit must be between 1 and %d", MaxSearchLimit)
	case req.Limit == 0:
		req.Limit = 20
	}
	asOf, offset, err := parseSearchCursor(req.Cursor)
	if err != nil {
		return SearchPage{}, err
	}
	if req.Conv != 0 {
		if _, err := s.member(ctx, req.Conv, p.User); err != nil {
			return SearchPage{}, err
		}
	}
	if req.Cursor == "" {
		if asOf, err = s.search.SearchCursor(ctx); err != nil {
			return SearchPage{}, err
		}
	}
	limit := min(req.Limit, o.MaxResultDepth-offset)
	if limit <= 0 {
		return SearchPage{Results: []SearchResult{}}, nil
	}
	hits, err := s.search.SearchMessages(ctx, chat.SearchQuery{
		User: p.User, Conv: req.Conv, Terms: terms, AsOf: asOf, Offset: offset, Limit: limit + 1,
	})
	if err != nil {
		return SearchPage{}, err
	}
	page := SearchPage{Results: make([]SearchResult, 0, min(len(hits), limit))}
	if len(hits) > limit {
		hits = hits[:limit]
		if offset+limit < o.MaxResultDepth {
			page.NextCursor = searchCursor(asOf, offset+limit)
		}
	}
	for _, h := range hits {
		snippet, highlights := searchtext.Snippet(h.Message.Text, terms, o.SnippetRunes)
		page.Results = append(page.Results, SearchResult{Message: h.Message, Snippet: snippet, Highlights: highlights, Rank: h.Rank})
	}
	return page, nil
}

// searchTerms checks a query and returns its terms.
func (s *Service) searchTerms(query string) ([]string, error) {
	o := s.opts.Search
	query = strings.TrimSpace(query)
	switch {
	case query == "":
		return nil, chat.Errorf(chat.CodeInvalidArgument, "q (the words to search for) is required")
	case len(query) > o.MaxQueryBytes:
		return nil, chat.Errorf(chat.CodeInvalidArgument, "q must be at most %d bytes", o.MaxQueryBytes)
	case !utf8.ValidString(query):
		return nil, chat.Errorf(chat.CodeInvalidArgument, "q must be valid UTF-8")
	}
	terms := searchtext.QueryTerms(query)
	switch {
	case len(terms) == 0:
		return nil, chat.Errorf(chat.CodeInvalidArgument, "q has no words to search for (only punctuation, symbols or emoji)")
	case len(terms) > o.MaxQueryTerms:
		return nil, chat.Errorf(chat.CodeInvalidArgument, "q has more than %d distinct words", o.MaxQueryTerms)
	}
	return terms, nil
}

// A search cursor is opaque to clients: "s1.<as of>.<offset>" in
// unpadded base64url. The later pages of a search see the index as of the
// first page's cursor position, so messages indexed in between do not
// push results across page boundaries.
const searchCursorVersion = "s1"

func searchCursor(asOf int64, offset int) string {
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "%s.%d.%d", searchCursorVersion, asOf, offset))
}

func parseSearchCursor(c string) (asOf int64, offset int, err error) {
	if c == "" {
		return 0, 0, nil
	}
	bad := chat.Errorf(chat.CodeInvalidArgument, "cursor is not one this server gave (pass next_cursor unchanged)")
	raw, decodeErr := base64.RawURLEncoding.DecodeString(c)
	if decodeErr != nil || len(raw) > 64 {
		return 0, 0, bad
	}
	var version string
	var rest string
	version, rest, _ = strings.Cut(string(raw), ".")
	if version != searchCursorVersion {
		return 0, 0, bad
	}
	if n, scanErr := fmt.Sscanf(rest, "%d.%d", &asOf, &offset); scanErr != nil || n != 2 || asOf < 0 || offset <= 0 {
		return 0, 0, bad
	}
	if searchCursor(asOf, offset) != c {
		return 0, 0, bad // trailing bytes, leading zeros, signs: not a cursor this server made
	}
	return asOf, offset, nil
}

// runIndexer runs an Indexer of the service's search index until ctx is
// done or the returned stop is called; stop waits for it.
func (s *Service) runIndexer(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		NewIndexer(s.search, s.opts.Search, s.log).Run(ctx)
	}()
	return func() { cancel(); <-done }
}
