-- Thumbnails that cannot be made: the job that finds an image's pixels
-- undecodable records when and why, and the sweep stops queueing the image
-- (chat.AttachmentStore.SetThumbnailFailed). Existing rows have not failed.
ALTER TABLE attachments ADD COLUMN thumbnail_failed_at INTEGER;
ALTER TABLE attachments ADD COLUMN thumbnail_error TEXT NOT NULL DEFAULT '';

-- The sweep's question: the oldest ready images still waiting for a thumbnail.
CREATE INDEX attachments_thumbnail_wanted ON attachments (created_at)
	WHERE state = 'ready' AND thumbnail_key = '' AND thumbnail_failed_at IS NULL AND content_type LIKE 'image/%';
