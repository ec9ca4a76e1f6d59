-- Avatars: one profile picture per user, independent of conversations.
-- The bytes live in the blob store under content_key and thumbnail_key.
CREATE TABLE avatars (
	user_id          INTEGER PRIMARY KEY REFERENCES users (id),
	id               TEXT    NOT NULL UNIQUE, -- 128 random bits, base32
	content_type     TEXT    NOT NULL,
	size             INTEGER NOT NULL,
	sha256           TEXT    NOT NULL,
	side             INTEGER NOT NULL,
	content_key      TEXT    NOT NULL,
	thumbnail_key    TEXT    NOT NULL,
	thumbnail_size   INTEGER NOT NULL,
	thumbnail_sha256 TEXT    NOT NULL,
	created_at       INTEGER NOT NULL
) STRICT;

-- The data export and account deletion find a user's uploads.
CREATE INDEX attachments_uploader ON attachments (uploader_id, id);
