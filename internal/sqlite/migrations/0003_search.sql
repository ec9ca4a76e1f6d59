-- Full-text search over messages (chat.SearchIndex). The index holds the
-- terms package searchtext makes of each message's text (words with
-- accents folded, CJK characters and bigrams), separated by spaces, so the
-- FTS5 tokenizer only splits them again; it folds case and diacritics the
-- same way for documents and queries, as a second line of defence.
-- rowid is the message id; conv_id and pos are stored, not indexed.
CREATE VIRTUAL TABLE message_search USING fts5 (
	terms,
	conv_id UNINDEXED,
	pos UNINDEXED, -- the message's change position the document reflects
	tokenize = "unicode61 remove_diacritics 2 categories 'L* N* Co M*'"
);

-- The indexer's cursor: every message change at or below pos is in
-- message_search. Resetting it to 0 rebuilds the index (see
-- docs/operations.md).
CREATE TABLE search_cursor (
	id  INTEGER PRIMARY KEY CHECK (id = 1),
	pos INTEGER NOT NULL
) STRICT;

INSERT INTO search_cursor (id, pos) VALUES (1, 0);

-- The indexer reads messages in position order across conversations.
CREATE INDEX messages_by_global_pos ON messages (pos);
