-- Avatars: one profile picture per user, independent of conversations.
-- The bytes live in the blob store under content_key and thumbnail_key.
CREATE TABLE avatars (
	user_id          bigint      PRIMARY KEY REFERENCES users (id),
	id               text        NOT NULL UNIQUE, -- 128 random bits, base32
	content_type     text        NOT NULL,
	size             bigint      NOT NULL,
	sha256           text        NOT NULL,
	side             integer     NOT NULL,
	content_key      text        NOT NULL,
	thumbnail_key    text        NOT NULL,
	thumbnail_size   bigint      NOT NULL,
	thumbnail_sha256 text        NOT NULL,
	created_at       timestamptz NOT NULL
);

-- The data export and account deletion find a user's uploads.
CREATE INDEX attachments_uploader ON attachments (uploader_id, id);
