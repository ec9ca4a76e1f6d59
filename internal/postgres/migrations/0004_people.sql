-- People: profiles, contacts and blocks, deleted accounts (chat.PeopleStore).

-- A user's profile. A user without a row has an empty profile, so the row
-- is created by the first change. deleted_at marks a deleted account: its
-- row then holds no personal data.
CREATE TABLE profiles (
	user_id      bigint      PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
	display_name text        NOT NULL DEFAULT '',
	name_key     text        COLLATE "C" NOT NULL DEFAULT '', -- chat.FoldName(display_name): what user search compares
	status_text  text        NOT NULL DEFAULT '',
	avatar       text,                                        -- an attachment id; NULL for none
	updated_at   timestamptz,
	deleted_at   timestamptz                                  -- NULL unless the account was deleted
);

-- User search by display-name prefix.
CREATE INDEX profiles_by_name ON profiles (name_key) WHERE name_key <> '';

-- Contacts and blocks: owner marked other.
CREATE TABLE relations (
	owner_id   bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	kind       text        NOT NULL CHECK (kind IN ('contact', 'block')),
	other_id   bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	created_at timestamptz NOT NULL,
	PRIMARY KEY (owner_id, kind, other_id)
);

-- Account deletion removes the marks others made of the user.
CREATE INDEX relations_by_other ON relations (other_id);

-- Data export and account deletion walk a user's sent messages.
CREATE INDEX messages_by_sender ON messages (sender_id, conv_id, seq);
