package chat

import "context"

// SearchIndex is the full-text index of messages, kept by a background
// indexer that follows the change positions of messages (see Store): it
// reads the messages changed after its cursor, turns them into documents
// and stores them together with the new cursor. Implementations: sqlite
// (FTS5) and postgres (tsvector + GIN). Every implementation must pass
// chattest.TestSearchIndex.
//
// The index stores terms, not text: package searchtext turns text into
// terms (accents folded, CJK runs as character bigrams) for documents and
// queries alike, so every implementation matches the same way. Like Store,
// a SearchIndex checks no permissions: SearchMessages only restricts
// results to the conversations the querying user is a member of now.
type SearchIndex interface {
	// SearchCursor returns the index's cursor: the change position up to
	// which every message change is reflected in the index (0 at first).
	SearchCursor(ctx context.Context) (int64, error)
	// ListChangedMessages returns up to limit messages (tombstones
	// included) whose latest change position is above after, in position
	// order. Positions commit in order, so a later call never finds a
	// change at or below the last position returned. limit is clamped to
	// [1, MaxPageSize].
	ListChangedMessages(ctx context.Context, after int64, limit int) ([]Message, error)
	// UpdateSearchIndex stores docs, each replacing the document of its
	// message (a doc without terms removes it), and moves the cursor from
	// from to to, in one transaction, only if the cursor is still from:
	// it returns false, having changed nothing, when another indexer moved
	// the cursor first (several nodes may index one database).
	UpdateSearchIndex(ctx context.Context, from, to int64, docs []SearchDoc) (bool, error)
	// SearchMessages returns a page of the messages that match every term
	// of q, best first (ties: newest message first). Deleted messages and
	// messages of conversations q.User is not a member of are never
	// returned.
	SearchMessages(ctx context.Context, q SearchQuery) ([]SearchHit, error)
}

// SearchDoc is one message's entry in the search index.
type SearchDoc struct {
	Message MessageID
	Conv    ConversationID
	Pos     int64    // the message's change position this document reflects
	Terms   []string // the message's terms in text order (searchtext.Terms); empty removes the message from the index
}

// SearchQuery selects a page of search results.
type SearchQuery struct {
	User  UserID         // only messages of conversations User is a member of now
	Conv  ConversationID // only this conversation's messages; 0 for all of User's conversations
	Terms []string       // every term must match (searchtext.QueryTerms); at least one
	// AsOf, if positive, leaves out documents of changes after it, so
	// that messages indexed between two pages do not shift the later
	// pages; zero means no such limit.
	AsOf   int64
	Offset int // results to skip (the earlier pages)
	Limit  int // clamped to [1, MaxPageSize]
}

// SearchHit is a message that matched a search, with its rank: higher is
// better. Ranks are comparable only within one query's results.
type SearchHit struct {
	Message Message
	Rank    float64
}
