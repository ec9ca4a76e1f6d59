-- Data export and account deletion find a user's messages conversation by
-- conversation (see sent.go) instead of through messages_by_sender, which
-- cost every send a write at a scattered place in the index (one more page
-- per message in each group commit) for the sake of two rare operations.
--
-- The conversations to look in are those the user is a member of and those
-- they left (departed_members). A membership that ended before 0002 left
-- no departed_members row, so the conversations in which such a former
-- member has messages are listed here (one pass over the covering
-- (conv_id, sender_id, client_id) index). Later departures are all in
-- departed_members, so nothing adds rows to this table.
CREATE TABLE former_senders (
	user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	conv_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	PRIMARY KEY (user_id, conv_id)
) STRICT, WITHOUT ROWID;

INSERT INTO former_senders (user_id, conv_id)
SELECT sender_id, conv_id FROM (SELECT DISTINCT sender_id, conv_id FROM messages)
EXCEPT SELECT user_id, conv_id FROM members
EXCEPT SELECT user_id, conv_id FROM departed_members;

DROP INDEX messages_by_sender;
