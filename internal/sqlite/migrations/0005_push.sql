-- Push notifications for offline users: subscriptions per device, settings
-- per user, notification levels per member, and the server's VAPID key.

-- One row per device registration with a push service. An endpoint (a Web
-- Push URL, an APNs or FCM token) reaches one device, so (kind, endpoint) is
-- unique: the last account that subscribed it owns it. A subscription is used
-- only while its session is live.
CREATE TABLE push_subscriptions (
	id           INTEGER PRIMARY KEY,
	user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	session_id   INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
	kind         TEXT    NOT NULL CHECK (kind IN ('webpush', 'apns', 'fcm')),
	endpoint     TEXT    NOT NULL,
	p256dh       BLOB,             -- webpush only: the browser's public key (65 bytes)
	auth         BLOB,             -- webpush only: the browser's auth secret (16 bytes)
	created_at   INTEGER NOT NULL,
	last_success INTEGER,          -- NULL until a push service accepted a notification
	UNIQUE (kind, endpoint)
) STRICT;

CREATE INDEX push_subscriptions_by_user ON push_subscriptions (user_id);

-- A user's push preferences; no row means the defaults.
CREATE TABLE push_settings (
	user_id   INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
	hide_text INTEGER NOT NULL CHECK (hide_text IN (0, 1))
) STRICT;

-- A member's notification level in a conversation; no row means 'all'.
-- Kept apart from members so that the hot members table stays narrow.
CREATE TABLE notify_levels (
	conv_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	level   TEXT    NOT NULL CHECK (level IN ('mentions', 'none')),
	PRIMARY KEY (conv_id, user_id)
) STRICT, WITHOUT ROWID;

-- The Web Push (VAPID) private key: one row, created on first start.
CREATE TABLE vapid_key (
	id          INTEGER PRIMARY KEY CHECK (id = 1),
	private_key BLOB    NOT NULL, -- P-256 private scalar (32 bytes)
	created_at  INTEGER NOT NULL
) STRICT;
