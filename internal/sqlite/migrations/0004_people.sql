-- People: profiles, contacts and blocks, deleted accounts (chat.PeopleStore).

-- A user's profile. A user without a row has an empty profile, so the row
-- is created by the first change. deleted_at marks a deleted account: its
-- row then holds no personal data.
CREATE TABLE profiles (
	user_id      INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
	display_name TEXT    NOT NULL DEFAULT '',
	name_key     TEXT    NOT NULL DEFAULT '', -- chat.FoldName(display_name): what user search compares
	status_text  TEXT    NOT NULL DEFAULT '',
	avatar       TEXT,                        -- an attachment id; NULL for none
	updated_at   INTEGER,
	deleted_at   INTEGER                      -- NULL unless the account was deleted
) STRICT;

-- User search by display-name prefix.
CREATE INDEX profiles_by_name ON profiles (name_key) WHERE name_key <> '';

-- Contacts and blocks: owner marked other.
CREATE TABLE relations (
	owner_id   INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	kind       TEXT    NOT NULL CHECK (kind IN ('contact', 'block')),
	other_id   INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (owner_id, kind, other_id)
) STRICT, WITHOUT ROWID;

-- Account deletion removes the marks others made of the user.
CREATE INDEX relations_by_other ON relations (other_id);

-- Data export and account deletion walk a user's sent messages.
CREATE INDEX messages_by_sender ON messages (sender_id, conv_id, seq);
