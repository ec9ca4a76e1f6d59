-- Media metadata: the playing time of audio and video attachments (their
-- frame size goes in width and height, as for images).
ALTER TABLE attachments ADD COLUMN duration_ms bigint NOT NULL DEFAULT 0;
