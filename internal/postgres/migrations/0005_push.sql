-- Push notifications for offline users: subscriptions per device, settings
-- per user, notification levels per member, and the VAPID key that every
-- node of a cluster shares.

-- One row per device registration with a push service. An endpoint (a Web
-- Push URL, an APNs or FCM token) reaches one device, so (kind, endpoint) is
-- unique: the last account that subscribed it owns it. A subscription is used
-- only while its session is live.
CREATE TABLE push_subscriptions (
	id           bigint      PRIMARY KEY,
	user_id      bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	session_id   bigint      NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
	kind         text        NOT NULL CHECK (kind IN ('webpush', 'apns', 'fcm')),
	endpoint     text        COLLATE "C" NOT NULL,
	p256dh       bytea,                 -- webpush only: the browser's public key (65 bytes)
	auth         bytea,                 -- webpush only: the browser's auth secret (16 bytes)
	created_at   timestamptz NOT NULL,
	last_success timestamptz,           -- NULL until a push service accepted a notification
	UNIQUE (kind, endpoint)
);

CREATE INDEX push_subscriptions_by_user ON push_subscriptions (user_id);

-- A user's push preferences; no row means the defaults.
CREATE TABLE push_settings (
	user_id   bigint  PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
	hide_text boolean NOT NULL
);

-- A member's notification level in a conversation; no row means 'all'.
-- Kept apart from members so that the hot members table stays narrow.
CREATE TABLE notify_levels (
	conv_id bigint NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	level   text   NOT NULL CHECK (level IN ('mentions', 'none')),
	PRIMARY KEY (conv_id, user_id)
);

-- The Web Push (VAPID) private key: one row; the first node to start
-- creates it, the others read it.
CREATE TABLE vapid_key (
	id          smallint    PRIMARY KEY CHECK (id = 1),
	private_key bytea       NOT NULL, -- P-256 private scalar (32 bytes)
	created_at  timestamptz NOT NULL
);
