-- Full-text search over messages (chat.SearchIndex). The index holds the
-- terms package searchtext makes of each message's text (words with
-- accents folded, CJK characters and bigrams); the store builds the
-- tsvector from them directly, with their positions, so no text search
-- configuration or extension (unaccent) is involved and matching is the
-- same as on SQLite.
CREATE TABLE message_search (
	message_id bigint   PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
	conv_id    bigint   NOT NULL,
	pos        bigint   NOT NULL, -- the message's change position the document reflects
	terms      tsvector NOT NULL
);

CREATE INDEX message_search_terms ON message_search USING gin (terms);

-- The indexer's cursor: every message change at or below pos is in
-- message_search. Indexers on several nodes advance it with a
-- compare-and-set. Resetting it to 0 rebuilds the index (see
-- docs/operations.md).
CREATE TABLE search_cursor (
	id  integer PRIMARY KEY CHECK (id = 1),
	pos bigint  NOT NULL
);

INSERT INTO search_cursor (id, pos) VALUES (1, 0);

-- The indexer reads messages in position order across conversations.
CREATE INDEX messages_by_global_pos ON messages (pos);
