-- Attachments: files uploaded for a conversation and, once sent, carried
-- by one message. The bytes live in a blob store under content_key and
-- thumbnail_key; while uploading, under the keys listed in parts.
CREATE TABLE attachments (
	id            text        PRIMARY KEY, -- 128 random bits, base32: never guessable
	conv_id       bigint      NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	uploader_id   bigint      NOT NULL REFERENCES users (id),
	state         text        NOT NULL CHECK (state IN ('uploading', 'ready', 'rejected', 'deleted')),
	name          text        NOT NULL,
	declared_type text        NOT NULL DEFAULT '',
	content_type  text        NOT NULL DEFAULT '',
	size          bigint      NOT NULL,
	received      bigint      NOT NULL DEFAULT 0,
	parts         text        NOT NULL DEFAULT '[]', -- JSON [{"start","end","key"}] while uploading
	sha256        text        NOT NULL DEFAULT '',
	width         integer     NOT NULL DEFAULT 0,
	height        integer     NOT NULL DEFAULT 0,
	content_key   text        NOT NULL DEFAULT '',
	thumbnail_key text        NOT NULL DEFAULT '',
	msg_id        bigint,                  -- the message carrying it; no foreign key: claimed just before the message is stored
	idx           integer     NOT NULL DEFAULT 0,
	created_at    timestamptz NOT NULL,
	claimed_at    timestamptz
);

CREATE INDEX attachments_msg ON attachments (msg_id, idx) WHERE msg_id IS NOT NULL;
CREATE INDEX attachments_created ON attachments (created_at);
