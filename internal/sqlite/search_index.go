package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/natter-chat/natter/internal/chat"
)

var _ chat.SearchIndex = (*Store)(nil)

// The search index is an FTS5 table, message_search, whose rowid is the
// message id and whose one indexed column holds the message's terms
// separated by spaces (see migrations/0003_search.sql). Index writes go
// through the one writer connection like every other write; the indexer
// keeps its batches small so that a commit of sends waits for one at most
// briefly.

// SearchCursor implements chat.SearchIndex.
func (s *Store) SearchCursor(ctx context.Context) (int64, error) {
	var pos int64
	if err := s.r.QueryRowContext(ctx, `SELECT pos FROM search_cursor WHERE id = 1`).Scan(&pos); err != nil {
		return 0, chat.Unavailable("sqlite.SearchCursor", err)
	}
	return pos, nil
}

// ListChangedMessages implements chat.SearchIndex, through the
// messages_by_global_pos index. The messages come without reactions,
// which the index does not need. The store has one writer, so positions
// commit in order.
func (s *Store) ListChangedMessages(ctx context.Context, after int64, limit int) ([]chat.Message, error) {
	const op = "sqlite.ListChangedMessages"
	limit = min(max(limit, 1), chat.MaxPageSize)
	msgs, err := queryAll(ctx, s.r, `SELECT `+messageColumns+` FROM messages m WHERE m.pos > ? ORDER BY m.pos LIMIT ?`,
		[]any{after, limit}, scanMessage)
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	return msgs, nil
}

// UpdateSearchIndex implements chat.SearchIndex in one IMMEDIATE
// transaction that first moves the cursor (compare-and-set), so a second
// indexer on the same file finds the cursor moved and writes nothing.
func (s *Store) UpdateSearchIndex(ctx context.Context, from, to int64, docs []chat.SearchDoc) (bool, error) {
	const op = "sqlite.UpdateSearchIndex"
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return false, chat.Unavailable(op, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE search_cursor SET pos = ? WHERE id = 1 AND pos = ?`, to, from)
	if err != nil {
		return false, chat.Unavailable(op, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		if err != nil {
			return false, chat.Unavailable(op, err)
		}
		return false, nil
	}
	if err := writeSearchDocs(ctx, tx, docs); err != nil {
		return false, chat.Unavailable(op, err)
	}
	if err := tx.Commit(); err != nil {
		return false, chat.Unavailable(op, err)
	}
	return true, nil
}

// writeSearchDocs replaces (or removes) the documents of docs' messages
// with at most two statements, whatever the number of docs: one DELETE for
// the docs without terms and one INSERT OR REPLACE (which FTS5 supports for
// an explicit rowid) for the others. A statement per doc cost the indexer
// most of its time on the writer, which sends wait for.
func writeSearchDocs(ctx context.Context, tx *sql.Tx, docs []chat.SearchDoc) error {
	var drop []chat.MessageID
	put := []byte{'['} // [[rowid, terms, conv_id, pos], ...]
	for _, d := range docs {
		if len(d.Terms) == 0 {
			drop = append(drop, d.Message)
			continue
		}
		terms, err := json.Marshal(strings.Join(d.Terms, " "))
		if err != nil {
			return err
		}
		if len(put) > 1 {
			put = append(put, ',')
		}
		put = fmt.Appendf(put, "[%d,%s,%d,%d]", int64(d.Message), terms, int64(d.Conv), d.Pos)
	}
	if len(drop) > 0 {
		if _, err := tx.ExecContext(ctx, `DELETE FROM message_search WHERE rowid IN (SELECT value FROM json_each(?))`,
			idArray(drop)); err != nil {
			return err
		}
	}
	if len(put) == 1 {
		return nil
	}
	_, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO message_search (rowid, terms, conv_id, pos)
		SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3 FROM json_each(?)`, string(append(put, ']')))
	return err
}

// searchSQL ranks with bm25 (lower is better, so the rank returned is its
// negation) the newest ?7 matches of ?2 among the messages of the
// conversations user ?1 is a member of, optionally only conversation ?3
// and documents at or below position ?4, skipping ?6 and returning ?5.
// FTS5 walks the matches newest first (rowids are time-ordered message
// ids) and stops at ?7, so a word found in a large share of all messages
// costs ?7 rankings, not one per match.
const searchSQL = `SELECT ` + messageColumns + `, -h.score FROM (
		SELECT rowid AS id, bm25(message_search) AS score FROM message_search
		WHERE message_search MATCH ?2
			AND conv_id IN (SELECT conv_id FROM members WHERE user_id = ?1)
			AND (?3 = 0 OR conv_id = ?3) AND (?4 = 0 OR pos <= ?4)
		ORDER BY rowid DESC LIMIT ?7
	) AS h
	JOIN messages m ON m.id = h.id
	WHERE m.deleted_at IS NULL
	ORDER BY h.score, m.id DESC LIMIT ?5 OFFSET ?6`

// searchCandidates is how many of the newest matches a search ranks.
const searchCandidates = 5000

// SearchMessages implements chat.SearchIndex. Every term becomes an FTS5
// phrase, so no character of a term is read as query syntax.
func (s *Store) SearchMessages(ctx context.Context, q chat.SearchQuery) ([]chat.SearchHit, error) {
	const op = "sqlite.SearchMessages"
	if len(q.Terms) == 0 {
		return nil, newError(op, chat.CodeInvalidArgument, "a search needs at least one word")
	}
	phrases := make([]string, len(q.Terms))
	for i, t := range q.Terms {
		phrases[i] = `"` + strings.ReplaceAll(t, `"`, `""`) + `"`
	}
	limit := min(max(q.Limit, 1), chat.MaxPageSize)
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	defer tx.Rollback()
	hits, err := queryAll(ctx, tx, searchSQL,
		[]any{int64(q.User), strings.Join(phrases, " "), int64(q.Conv), q.AsOf, limit, max(q.Offset, 0), searchCandidates},
		func(row scanner) (chat.SearchHit, error) {
			var h chat.SearchHit
			m, err := scanMessage(scanWithRank{row, &h.Rank})
			h.Message = m
			return h, err
		})
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	msgs := make([]*chat.Message, len(hits))
	for i := range hits {
		msgs[i] = &hits[i].Message
	}
	if err := attachReactions(ctx, tx, msgs...); err != nil {
		return nil, chat.Unavailable(op, err)
	}
	return hits, nil
}

// scanWithRank scans messageColumns followed by one more column, the
// rank, so that scanMessage can read a search result row.
type scanWithRank struct {
	row  scanner
	rank *float64
}

func (s scanWithRank) Scan(dest ...any) error { return s.row.Scan(append(dest, s.rank)...) }
