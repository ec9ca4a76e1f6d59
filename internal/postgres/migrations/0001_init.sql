-- Natter's schema on PostgreSQL. Times are timestamptz kept to the
-- millisecond (the store truncates them before writing); ids are snowflakes
-- chosen by the caller, so no column has a default sequence. Strings that
-- are compared or ordered (usernames, emoji, direct keys) use the "C"
-- collation: byte order, the same on every server whatever its locale, and
-- the order SQLite uses.

CREATE TABLE users (
	id            bigint      PRIMARY KEY,
	username      text        COLLATE "C" NOT NULL, -- already lower-cased by the caller
	password_hash text        NOT NULL,
	created_at    timestamptz NOT NULL,
	CONSTRAINT users_username_key UNIQUE (username) -- classified as username_taken
);

CREATE TABLE sessions (
	id           bigint      PRIMARY KEY,
	user_id      bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	device       text        NOT NULL,
	refresh_hash text        NOT NULL UNIQUE, -- the current refresh token's hash
	created_at   timestamptz NOT NULL,
	last_used_at timestamptz NOT NULL,
	expires_at   timestamptz NOT NULL,
	revoked_at   timestamptz               -- NULL while live
);

-- ListSessions: a user's sessions, newest first.
CREATE INDEX sessions_by_user ON sessions (user_id, created_at);

-- Refresh token hashes rotated away, kept to detect reuse of a stolen token.
CREATE TABLE used_refresh_tokens (
	hash       text   PRIMARY KEY,
	session_id bigint NOT NULL REFERENCES sessions (id) ON DELETE CASCADE
);

CREATE INDEX used_refresh_tokens_by_session ON used_refresh_tokens (session_id);

-- Change positions for the sync stream (Store.ListChanges): the one row's
-- pos is the newest position handed out. A write transaction takes its
-- positions with UPDATE ... RETURNING as its last lock and holds the row
-- lock until it commits, so positions become visible in increasing order.
CREATE TABLE positions (
	id  integer PRIMARY KEY CHECK (id = 1),
	pos bigint  NOT NULL
);

INSERT INTO positions (id, pos) VALUES (1, 0);

CREATE TABLE conversations (
	id               bigint      PRIMARY KEY,
	kind             text        NOT NULL CHECK (kind IN ('direct', 'group')),
	title            text        NOT NULL,
	created_by       bigint      NOT NULL REFERENCES users (id),
	created_at       timestamptz NOT NULL,
	last_seq         bigint      NOT NULL DEFAULT 0, -- seq of the newest message; advanced under the row lock
	direct_key       text        COLLATE "C" UNIQUE, -- "<smaller id>:<larger id>" for direct, NULL for group
	last_activity_at timestamptz NOT NULL,           -- newest message's sent_at, else created_at
	pos              bigint      NOT NULL            -- latest change of the conversation's own fields
);

CREATE TABLE members (
	conv_id       bigint      NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	user_id       bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	role          text        NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
	joined_at     timestamptz NOT NULL,
	read_seq      bigint      NOT NULL DEFAULT 0,
	delivered_seq bigint      NOT NULL DEFAULT 0,
	pos           bigint      NOT NULL,
	PRIMARY KEY (conv_id, user_id)
);

CREATE INDEX members_by_user ON members (user_id, conv_id);
CREATE INDEX members_by_pos ON members (conv_id, pos);

CREATE TABLE messages (
	id         bigint      PRIMARY KEY,
	conv_id    bigint      NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	seq        bigint      NOT NULL,
	sender_id  bigint      NOT NULL REFERENCES users (id),
	client_id  text,                  -- the sender's idempotency key; NULL (never deduplicated) when empty
	text       text        NOT NULL,
	sent_at    timestamptz NOT NULL,
	reply_to   bigint,                -- an earlier message of the conversation; NULL for none
	mentions   bigint[],              -- mentioned user ids; NULL for none
	edited_at  timestamptz,           -- NULL if never edited
	deleted_at timestamptz,           -- NULL unless a tombstone (text '' and mentions NULL)
	pos        bigint      NOT NULL,
	CONSTRAINT messages_conv_seq_key UNIQUE (conv_id, seq),                      -- history pages, last message, unread counts
	CONSTRAINT messages_idempotency_key UNIQUE (conv_id, sender_id, client_id)   -- idempotent appends
);

CREATE INDEX messages_by_pos ON messages (conv_id, pos);

-- A message's current reactions; deleting the message deletes them. pos is
-- the position of the change that added the reaction: it orders the users
-- of one emoji.
CREATE TABLE reactions (
	message_id bigint NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
	emoji      text   COLLATE "C" NOT NULL,
	user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	pos        bigint NOT NULL,
	PRIMARY KEY (message_id, emoji, user_id)
);

-- The last state of memberships that ended (the member_left changes). A
-- user added to the conversation again loses the record.
CREATE TABLE departed_members (
	conv_id       bigint      NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	user_id       bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	role          text        NOT NULL,
	joined_at     timestamptz NOT NULL,
	read_seq      bigint      NOT NULL,
	delivered_seq bigint      NOT NULL,
	left_at       timestamptz NOT NULL,
	pos           bigint      NOT NULL,
	PRIMARY KEY (conv_id, user_id)
);

CREATE INDEX departed_members_by_pos ON departed_members (conv_id, pos);
CREATE INDEX departed_members_by_user ON departed_members (user_id, pos);
