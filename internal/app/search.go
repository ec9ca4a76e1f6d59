package app

import "github.com/natter-chat/natter/internal/chat"

// searchIndex returns the store's message search index: SQLite FTS5 in
// embedded mode, PostgreSQL full-text search in cluster mode. Both stores
// have one; nil (search off) is for a store that has none.
func searchIndex(store chat.Store) chat.SearchIndex {
	idx, _ := store.(chat.SearchIndex)
	return idx
}
