package postgres

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/natter-chat/natter/internal/chat"
)

var _ chat.SearchIndex = (*Store)(nil)

// The search index is the table message_search: one tsvector of terms per
// message, under a GIN index (see migrations/0003_search.sql). The store
// writes the tsvector and the tsquery in their text forms, lexemes quoted,
// so PostgreSQL takes the terms as they are: no parser, dictionary or
// stemming stands between package searchtext and the index.

// maxLexemePositions is how many positions tsvector keeps per lexeme;
// maxPosition is the highest position it can store.
const (
	maxLexemePositions = 256
	maxPosition        = 16383
)

// SearchCursor implements chat.SearchIndex.
func (s *Store) SearchCursor(ctx context.Context) (int64, error) {
	var pos int64
	if err := s.pool.QueryRow(ctx, `SELECT pos FROM search_cursor WHERE id = 1`).Scan(&pos); err != nil {
		return 0, chat.Unavailable("postgres.SearchCursor", err)
	}
	return pos, nil
}

// ListChangedMessages implements chat.SearchIndex in one statement, so
// one snapshot, in which positions form a gap-free prefix (see doc.go).
func (s *Store) ListChangedMessages(ctx context.Context, after int64, limit int) ([]chat.Message, error) {
	const op = "postgres.ListChangedMessages"
	limit = min(max(limit, 1), chat.MaxPageSize)
	rows, err := s.pool.Query(ctx, `SELECT `+messageColumns+` FROM (
			SELECT * FROM messages WHERE pos > $1 ORDER BY pos LIMIT $2
		) AS m`+withReactions+` ORDER BY m.pos`, after, limit)
	if err != nil {
		return nil, classify(op, "the messages", err)
	}
	msgs, err := collect(rows, scanMessage)
	if err != nil {
		return nil, classify(op, "the messages", err)
	}
	return msgs, nil
}

// errCursorMoved rolls back an index update whose cursor another node
// moved first.
var errCursorMoved = errors.New("search cursor moved")

// UpdateSearchIndex implements chat.SearchIndex. The transaction moves
// the cursor first: a second node's transaction waits for that row lock,
// then finds the cursor moved and rolls back without writing.
func (s *Store) UpdateSearchIndex(ctx context.Context, from, to int64, docs []chat.SearchDoc) (bool, error) {
	const op = "postgres.UpdateSearchIndex"
	err := s.writeOnce(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE search_cursor SET pos = $2 WHERE id = 1 AND pos = $1`, from, to)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return errCursorMoved
		}
		b := &pgx.Batch{}
		for _, d := range docs {
			if len(d.Terms) == 0 {
				b.Queue(`DELETE FROM message_search WHERE message_id = $1`, int64(d.Message))
				continue
			}
			b.Queue(`INSERT INTO message_search (message_id, conv_id, pos, terms) VALUES ($1, $2, $3, $4::tsvector)
				ON CONFLICT (message_id) DO UPDATE SET conv_id = excluded.conv_id, pos = excluded.pos, terms = excluded.terms`,
				int64(d.Message), int64(d.Conv), d.Pos, tsvectorLiteral(d.Terms))
		}
		return tx.SendBatch(ctx, b).Close()
	})
	switch {
	case errors.Is(err, errCursorMoved):
		return false, nil
	case err != nil:
		return false, classify(op, "the search index", err)
	}
	return true, nil
}

// searchSQL ranks with ts_rank the newest $7 matches of tsquery $2 among
// the documents of the conversations user $1 is a member of, optionally
// only conversation $3 and documents at or below position $4, and returns
// the page ($5 after skipping $6) of those whose message is not deleted,
// best first, with the messages and their reactions.
//
// The candidates are chosen by message id (ids are time-ordered) before
// anything is ranked, so a word found in a large share of all messages
// costs $7 rankings, not one per match. For such a word PostgreSQL walks
// message_search's primary key backwards, tests each document, and stops
// at the $7th match; for a rarer one it takes the matches from the GIN
// index (and message_search_by_conv, for one conversation) and keeps the
// newest $7. The ranked candidates are sorted before the messages are
// read (OFFSET 0 keeps the planner from merging h into the join), so the
// deleted ones are skipped while reading in rank order, and only as many
// messages are read as the page needs; reactions for the page only.
const searchSQL = `SELECT ` + messageColumns + `, m.rank FROM (
		SELECT msg.*, h.rank FROM (
			SELECT c.message_id, ts_rank(c.terms, $2::tsquery)::float8 AS rank FROM (
				SELECT s.message_id, s.terms FROM message_search s
				WHERE s.terms @@ $2::tsquery
					AND s.conv_id IN (SELECT me.conv_id FROM members me WHERE me.user_id = $1)
					AND ($3::bigint = 0 OR s.conv_id = $3::bigint) AND ($4::bigint = 0 OR s.pos <= $4::bigint)
				ORDER BY s.message_id DESC LIMIT $7
			) AS c
			ORDER BY rank DESC, c.message_id DESC OFFSET 0
		) AS h JOIN messages msg ON msg.id = h.message_id
		WHERE msg.deleted_at IS NULL
		ORDER BY h.rank DESC, h.message_id DESC LIMIT $5 OFFSET $6
	) AS m` + withReactions + `
	ORDER BY m.rank DESC, m.id DESC`

// searchCandidates is how many of the newest matches a search ranks (see
// docs/protocol.md, "Message search").
const searchCandidates = 5000

// SearchMessages implements chat.SearchIndex: the terms are ANDed.
//
// The query runs as an unnamed statement (pgx.QueryExecModeExec), so
// PostgreSQL plans it for its parameters every time. A prepared statement
// switches to a generic plan after five runs, and a generic plan cannot
// tell a common word from a rare one: it would find the newest matches of
// one of them the slow way (all 100,000 matches of a word in a tenth of a
// million messages, or a walk of the whole index for a rare word).
func (s *Store) SearchMessages(ctx context.Context, q chat.SearchQuery) ([]chat.SearchHit, error) {
	const op = "postgres.SearchMessages"
	if len(q.Terms) == 0 {
		return nil, &chat.Error{Code: chat.CodeInvalidArgument, Message: "a search needs at least one word", Op: op}
	}
	lexemes := make([]string, len(q.Terms))
	for i, t := range q.Terms {
		lexemes[i] = quoteLexeme(t)
	}
	limit := min(max(q.Limit, 1), chat.MaxPageSize)
	rows, err := s.pool.Query(ctx, searchSQL, pgx.QueryExecModeExec, int64(q.User), strings.Join(lexemes, " & "),
		int64(q.Conv), q.AsOf, limit, max(q.Offset, 0), searchCandidates)
	if err != nil {
		return nil, classify(op, "the search", err)
	}
	hits, err := collect(rows, func(row pgx.Row) (chat.SearchHit, error) {
		var h chat.SearchHit
		m, err := scanMessage(rowWithRank{row, &h.Rank})
		h.Message = m
		return h, err
	})
	if err != nil {
		return nil, classify(op, "the search", err)
	}
	return hits, nil
}

// rowWithRank scans messageColumns followed by the rank.
type rowWithRank struct {
	row  pgx.Row
	rank *float64
}

func (r rowWithRank) Scan(dest ...any) error { return r.row.Scan(append(dest, r.rank)...) }

// tsvectorLiteral returns the text form of a tsvector holding terms at
// their positions (1, 2, ...), the lexemes in order of first appearance.
// Positions past maxPosition count as maxPosition, and a lexeme keeps at
// most maxLexemePositions of them, as PostgreSQL would.
func tsvectorLiteral(terms []string) string {
	var order []string
	positions := map[string][]int{}
	for i, t := range terms {
		p := min(i+1, maxPosition)
		ps, seen := positions[t]
		if !seen {
			order = append(order, t)
		}
		if len(ps) < maxLexemePositions && (len(ps) == 0 || ps[len(ps)-1] != p) {
			positions[t] = append(ps, p)
		}
	}
	var b strings.Builder
	for i, t := range order {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(quoteLexeme(t))
		for j, p := range positions[t] {
			if j == 0 {
				b.WriteByte(':')
			} else {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Itoa(p))
		}
	}
	return b.String()
}

// quoteLexeme quotes a term for the text form of a tsvector or tsquery.
func quoteLexeme(t string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `''`).Replace(t) + "'"
}
