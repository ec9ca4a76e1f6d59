-- Natter's initial schema. Times are INTEGER unix milliseconds (UTC); ids are
-- snowflakes chosen by the caller, so every id column is a rowid alias or a
-- plain INTEGER and the store never generates one.

CREATE TABLE users (
	id            INTEGER PRIMARY KEY,
	username      TEXT    NOT NULL UNIQUE, -- already lower-cased by the caller
	password_hash TEXT    NOT NULL,
	created_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE sessions (
	id           INTEGER PRIMARY KEY,
	user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	device       TEXT    NOT NULL,
	refresh_hash TEXT    NOT NULL UNIQUE, -- the current refresh token's hash
	created_at   INTEGER NOT NULL,
	last_used_at INTEGER NOT NULL,
	expires_at   INTEGER NOT NULL,
	revoked_at   INTEGER                  -- NULL while live
) STRICT;

-- ListSessions: a user's sessions, newest first.
CREATE INDEX sessions_by_user ON sessions (user_id, created_at);

-- Refresh token hashes rotated away, kept to detect reuse of a stolen token.
CREATE TABLE used_refresh_tokens (
	hash       TEXT    PRIMARY KEY,
	session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

CREATE INDEX used_refresh_tokens_by_session ON used_refresh_tokens (session_id);

CREATE TABLE conversations (
	id               INTEGER PRIMARY KEY,
	kind             TEXT    NOT NULL CHECK (kind IN ('direct', 'group')),
	title            TEXT    NOT NULL,
	created_by       INTEGER NOT NULL REFERENCES users (id),
	created_at       INTEGER NOT NULL,
	last_seq         INTEGER NOT NULL DEFAULT 0, -- seq of the newest message
	direct_key       TEXT    UNIQUE,             -- "<smaller id>:<larger id>" for direct, NULL for group
	last_activity_at INTEGER NOT NULL            -- newest message's sent_at, else created_at
) STRICT;

CREATE TABLE members (
	conv_id   INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	user_id   INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	role      TEXT    NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
	joined_at INTEGER NOT NULL,
	read_seq  INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (conv_id, user_id)
) STRICT, WITHOUT ROWID;

-- A user's conversations. In a WITHOUT ROWID table the index carries the
-- primary key, so (user_id, conv_id) is covered.
CREATE INDEX members_by_user ON members (user_id);

CREATE TABLE messages (
	id        INTEGER PRIMARY KEY, -- time-sortable: inserts append to the table's b-tree
	conv_id   INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	seq       INTEGER NOT NULL,
	sender_id INTEGER NOT NULL REFERENCES users (id),
	client_id TEXT,                -- the sender's idempotency key; NULL (never deduplicated) when empty
	text      TEXT    NOT NULL,
	sent_at   INTEGER NOT NULL,
	UNIQUE (conv_id, seq),                 -- history pages, last message, unread counts
	UNIQUE (conv_id, sender_id, client_id) -- idempotent appends
) STRICT;
