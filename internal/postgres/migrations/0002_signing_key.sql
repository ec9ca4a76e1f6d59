-- The token signing key that every node of a cluster shares (in embedded
-- mode it is a file in the data directory). One row; the first node to
-- start creates it, the others read it.
CREATE TABLE signing_key (
	id          smallint    PRIMARY KEY CHECK (id = 1),
	private_key bytea       NOT NULL, -- Ed25519 private key (64 bytes: seed and public key)
	created_at  timestamptz NOT NULL
);
