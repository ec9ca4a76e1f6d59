package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/natter-chat/natter/internal/chat"
)

// CopyMessages stores drafts as new messages with COPY, for building large
// benchmark corpora quickly; it is exported for the package's external
// tests. It writes what AppendMessages writes (the messages with their
// seqs and change positions in batch order, the conversations' last seqs
// and activity times), in one transaction and under the same locks, but
// checks nothing: every draft must be valid, new and not a retry, with no
// reply or mentions.
func CopyMessages(ctx context.Context, s *Store, drafts []chat.Draft) error {
	if len(drafts) == 0 {
		return nil
	}
	return s.writeOnce(ctx, func(tx pgx.Tx) error {
		var convs []int64
		for _, d := range drafts {
			convs = append(convs, int64(d.Conv))
		}
		rows, err := tx.Query(ctx, `SELECT id, last_seq FROM conversations WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`, convs)
		if err != nil {
			return err
		}
		lastSeq := map[int64]int64{}
		var id, seq int64
		if _, err := pgx.ForEachRow(rows, []any{&id, &seq}, func() error { lastSeq[id] = seq; return nil }); err != nil {
			return err
		}
		var pos int64
		if err := tx.QueryRow(ctx, `UPDATE positions SET pos = pos + $1 WHERE id = 1 RETURNING pos`, len(drafts)).Scan(&pos); err != nil {
			return err
		}
		first := pos - int64(len(drafts)) + 1
		lastAt := map[int64]time.Time{}
		_, err = tx.CopyFrom(ctx, pgx.Identifier{"messages"},
			[]string{"id", "conv_id", "seq", "sender_id", "client_id", "text", "sent_at", "pos"},
			pgx.CopyFromSlice(len(drafts), func(i int) ([]any, error) {
				d := drafts[i]
				conv := int64(d.Conv)
				lastSeq[conv]++
				lastAt[conv] = ms(d.SentAt)
				return []any{int64(d.ID), conv, lastSeq[conv], int64(d.Sender), d.ClientID, d.Text, ms(d.SentAt), first + int64(i)}, nil
			}))
		if err != nil {
			return err
		}
		var ids, seqs []int64
		var ats []time.Time
		for conv, at := range lastAt {
			ids, seqs, ats = append(ids, conv), append(seqs, lastSeq[conv]), append(ats, at)
		}
		_, err = tx.Exec(ctx, `UPDATE conversations c SET last_seq = a.seq, last_activity_at = a.sent_at
			FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[]) AS a(id, seq, sent_at) WHERE c.id = a.id`, ids, seqs, ats)
		return err
	})
}
