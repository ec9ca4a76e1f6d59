-- Attachments: files uploaded for a conversation and, once sent, carried
-- by one message. The bytes live in a blob store under content_key and
-- thumbnail_key; while uploading, under the keys listed in parts.
CREATE TABLE attachments (
	id            TEXT    PRIMARY KEY, -- 128 random bits, base32: never guessable
	conv_id       INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	uploader_id   INTEGER NOT NULL REFERENCES users (id),
	state         TEXT    NOT NULL CHECK (state IN ('uploading', 'ready', 'rejected', 'deleted')),
	name          TEXT    NOT NULL,
	declared_type TEXT    NOT NULL DEFAULT '',
	content_type  TEXT    NOT NULL DEFAULT '',
	size          INTEGER NOT NULL,
	received      INTEGER NOT NULL DEFAULT 0,
	parts         TEXT    NOT NULL DEFAULT '[]', -- JSON [{"start","end","key"}] while uploading
	sha256        TEXT    NOT NULL DEFAULT '',
	width         INTEGER NOT NULL DEFAULT 0,
	height        INTEGER NOT NULL DEFAULT 0,
	content_key   TEXT    NOT NULL DEFAULT '',
	thumbnail_key TEXT    NOT NULL DEFAULT '',
	msg_id        INTEGER,             -- the message carrying it; no foreign key: claimed just before the message is stored
	idx           INTEGER NOT NULL DEFAULT 0,
	created_at    INTEGER NOT NULL,
	claimed_at    INTEGER
) STRICT;

CREATE INDEX attachments_msg ON attachments (msg_id, idx) WHERE msg_id IS NOT NULL;
CREATE INDEX attachments_created ON attachments (created_at);
