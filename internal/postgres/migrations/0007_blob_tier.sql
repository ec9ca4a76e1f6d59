-- Cold tier: which blob store holds an attachment's content. Uploads are
-- written to the hot store; the attachment sweep moves old content to the
-- cold one and records it here. Thumbnails always stay hot.
ALTER TABLE attachments ADD COLUMN tier text NOT NULL DEFAULT 'hot' CHECK (tier IN ('hot', 'cold'));

-- The sweep's question: the oldest claimed, ready content still hot.
CREATE INDEX attachments_hot ON attachments (created_at) WHERE tier = 'hot' AND state = 'ready' AND msg_id IS NOT NULL;
