-- Message actions (replies, mentions, edits, deletes, reactions), delivery
-- receipts and change positions for the sync stream (Store.ListChanges).
--
-- Every write that changes a row stamps it with the next value of one
-- counter (positions.pos), taken inside the write's transaction. The store
-- has one writer connection, so positions are unique and increase in commit
-- order; a row's pos is the position of its latest change.

CREATE TABLE positions (
	id  INTEGER PRIMARY KEY CHECK (id = 1),
	pos INTEGER NOT NULL -- the newest position handed out; 0 when none
) STRICT;

ALTER TABLE messages ADD COLUMN reply_to   INTEGER;                   -- an earlier message of the conversation; NULL for none
ALTER TABLE messages ADD COLUMN mentions   TEXT;                      -- JSON array of user ids, e.g. [12,34]; NULL for none
ALTER TABLE messages ADD COLUMN edited_at  INTEGER;                   -- NULL if never edited
ALTER TABLE messages ADD COLUMN deleted_at INTEGER;                   -- NULL unless a tombstone (text '' and mentions NULL)
ALTER TABLE messages ADD COLUMN pos        INTEGER NOT NULL DEFAULT 0;

ALTER TABLE members ADD COLUMN delivered_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE members ADD COLUMN pos           INTEGER NOT NULL DEFAULT 0;

ALTER TABLE conversations ADD COLUMN pos INTEGER NOT NULL DEFAULT 0; -- latest change of the conversation's own fields

-- A message's current reactions; deleting the message deletes them. pos is
-- the position of the change that added the reaction: it orders the users
-- of one emoji (SetReaction takes no time, and positions never tie).
CREATE TABLE reactions (
	message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
	emoji      TEXT    NOT NULL,
	user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	pos        INTEGER NOT NULL,
	PRIMARY KEY (message_id, emoji, user_id)
) STRICT, WITHOUT ROWID;

-- The last state of memberships that ended (the member_left changes). A
-- user added to the conversation again loses the record.
CREATE TABLE departed_members (
	conv_id       INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	role          TEXT    NOT NULL,
	joined_at     INTEGER NOT NULL,
	read_seq      INTEGER NOT NULL,
	delivered_seq INTEGER NOT NULL,
	left_at       INTEGER NOT NULL,
	pos           INTEGER NOT NULL,
	PRIMARY KEY (conv_id, user_id)
) STRICT, WITHOUT ROWID;

-- ListChanges reads each source per conversation in position order, and a
-- user's own departures in position order.
CREATE INDEX messages_by_pos ON messages (conv_id, pos);
CREATE INDEX members_by_pos ON members (conv_id, pos);
CREATE INDEX departed_members_by_pos ON departed_members (conv_id, pos);
CREATE INDEX departed_members_by_user ON departed_members (user_id, pos);

-- Backfill: conversations, then their members, then messages in seq order
-- within each conversation, so a sync from position 0 meets a conversation
-- before what belongs to it.
UPDATE conversations SET pos = n.pos
FROM (SELECT id, row_number() OVER (ORDER BY id) AS pos FROM conversations) AS n
WHERE conversations.id = n.id;

UPDATE members SET pos = (SELECT count(*) FROM conversations) + n.pos
FROM (SELECT conv_id, user_id, row_number() OVER (ORDER BY conv_id, joined_at, user_id) AS pos FROM members) AS n
WHERE members.conv_id = n.conv_id AND members.user_id = n.user_id;

UPDATE messages SET pos = (SELECT count(*) FROM conversations) + (SELECT count(*) FROM members) + n.pos
FROM (SELECT id, row_number() OVER (ORDER BY conv_id, seq) AS pos FROM messages) AS n
WHERE messages.id = n.id;

INSERT INTO positions (id, pos)
VALUES (1, (SELECT count(*) FROM conversations) + (SELECT count(*) FROM members) + (SELECT count(*) FROM messages));
