-- A search limited to one conversation (GET /v1/search?conv=) finds the
-- conversation's documents here and intersects them with the GIN index's
-- matches, instead of reading every match of the words in every
-- conversation: for a word in a tenth of all messages, about 1% of them
-- rather than 10%. The message id orders a conversation's documents
-- newest first.
CREATE INDEX message_search_by_conv ON message_search (conv_id, message_id);
