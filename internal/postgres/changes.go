package postgres

import (
	"cmp"
	"context"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/natter-chat/natter/internal/chat"
)

// A user's changes come from five sources, each read in position order:
// the messages, members and member_left records of the conversations the
// user is a member of (through the (conv_id, pos) indexes, at most limit+1
// rows per conversation), the conversations themselves, and the user's own
// member_left records (through (user_id, pos)). ListChanges merges the
// first limit+1 of each: if any source has more, the page is full.

// The sources select, for user $1, rows with pos > $2 in pos order, at most
// $3. Each per-conversation subquery stops after $3 rows, so a sync from an
// old cursor reads no more than $3 rows per conversation; messages get
// their reactions after the cut.
const (
	messageChangesSQL = `SELECT ` + messageColumns + ` FROM (
			SELECT i.* FROM members me
			CROSS JOIN LATERAL (SELECT * FROM messages x WHERE x.conv_id = me.conv_id AND x.pos > $2 ORDER BY x.pos LIMIT $3) AS i
			WHERE me.user_id = $1 ORDER BY i.pos LIMIT $3
		) AS m` + withReactions + ` ORDER BY m.pos`
	memberChangesSQL = `SELECT i.* FROM members me
		CROSS JOIN LATERAL (SELECT ` + memberColumns + ` FROM members x
			WHERE x.conv_id = me.conv_id AND x.pos > $2 ORDER BY x.pos LIMIT $3) AS i
		WHERE me.user_id = $1 ORDER BY i.pos LIMIT $3`
	departedChangesSQL = `SELECT i.* FROM members me
		CROSS JOIN LATERAL (SELECT ` + memberColumns + ` FROM departed_members x
			WHERE x.conv_id = me.conv_id AND x.pos > $2 ORDER BY x.pos LIMIT $3) AS i
		WHERE me.user_id = $1 ORDER BY i.pos LIMIT $3`
	ownDepartureChangesSQL = `SELECT ` + memberColumns + ` FROM departed_members
		WHERE user_id = $1 AND pos > $2 ORDER BY pos LIMIT $3`
	conversationChangesSQL = `SELECT c.id, c.kind, c.title, c.created_by, c.created_at, c.last_seq, c.pos FROM members me
		JOIN conversations c ON c.id = me.conv_id
		WHERE me.user_id = $1 AND c.pos > $2 ORDER BY c.pos LIMIT $3`
)

// ListChanges implements chat.Store. All sources are read in one
// REPEATABLE READ snapshot, in one round trip. Positions commit in order,
// so a snapshot holds every position up to its newest: a page never misses
// a change below its Cursor that a later page would find. A change's Pos
// equals the Pos of what it carries. limit is clamped to
// [1, chat.MaxPageSize].
func (s *Store) ListChanges(ctx context.Context, user chat.UserID, after int64, limit int) (chat.Changes, error) {
	const op = "postgres.ListChanges"
	limit = min(max(limit, 1), chat.MaxPageSize)
	var changes []chat.Change
	err := s.read(ctx, op, func(tx pgx.Tx) error {
		changes = nil
		b := &pgx.Batch{}
		for _, query := range []string{messageChangesSQL, memberChangesSQL, departedChangesSQL, ownDepartureChangesSQL, conversationChangesSQL} {
			b.Queue(query, int64(user), after, limit+1)
		}
		br := tx.SendBatch(ctx, b)
		defer br.Close()
		add := func(c chat.Change) { changes = append(changes, c) }
		err := queryEach(br, func(row pgx.Row) error {
			m, err := scanMessage(row)
			add(chat.Change{Pos: m.Pos, Kind: chat.ChangeMessage, Message: &m})
			return err
		})
		for _, kind := range []chat.ChangeKind{chat.ChangeMember, chat.ChangeMemberLeft, chat.ChangeMemberLeft} {
			if err != nil {
				return err
			}
			err = queryEach(br, func(row pgx.Row) error {
				m, err := scanMember(row)
				add(chat.Change{Pos: m.Pos, Kind: kind, Member: &m})
				return err
			})
		}
		if err != nil {
			return err
		}
		err = queryEach(br, func(row pgx.Row) error {
			c, err := scanConversation(row)
			add(chat.Change{Pos: c.Pos, Kind: chat.ChangeConversation, Conversation: &c})
			return err
		})
		if err != nil {
			return err
		}
		return br.Close()
	})
	if err != nil {
		return chat.Changes{}, err
	}
	slices.SortFunc(changes, func(a, b chat.Change) int { return cmp.Compare(a.Pos, b.Pos) })
	page := chat.Changes{Changes: changes, Cursor: after}
	if len(changes) > limit {
		page.Changes, page.HasMore = changes[:limit], true
	}
	if n := len(page.Changes); n > 0 {
		page.Cursor = page.Changes[n-1].Pos
	}
	return page, nil
}

// countChangesSQL counts, in one statement (one snapshot), the rows of the
// five sources with pos > $2 for user $1, reading at most $3 of each.
const countChangesSQL = `SELECT
	(SELECT count(*) FROM (SELECT 1 FROM members me JOIN messages m ON m.conv_id = me.conv_id AND m.pos > $2
		WHERE me.user_id = $1 LIMIT $3) AS a) +
	(SELECT count(*) FROM (SELECT 1 FROM members me JOIN members x ON x.conv_id = me.conv_id AND x.pos > $2
		WHERE me.user_id = $1 LIMIT $3) AS b) +
	(SELECT count(*) FROM (SELECT 1 FROM members me JOIN departed_members d ON d.conv_id = me.conv_id AND d.pos > $2
		WHERE me.user_id = $1 LIMIT $3) AS c) +
	(SELECT count(*) FROM (SELECT 1 FROM departed_members WHERE user_id = $1 AND pos > $2 LIMIT $3) AS d) +
	(SELECT count(*) FROM (SELECT 1 FROM members me JOIN conversations c ON c.id = me.conv_id AND c.pos > $2
		WHERE me.user_id = $1 LIMIT $3) AS e)`

// CountChanges implements chat.Store: it counts what ListChanges would
// return from after, reading no more than atMost rows of each source, and
// returns at most atMost; 0 when atMost <= 0.
func (s *Store) CountChanges(ctx context.Context, user chat.UserID, after int64, atMost int) (int, error) {
	const op = "postgres.CountChanges"
	if atMost <= 0 {
		return 0, nil
	}
	var n int64
	if err := s.pool.QueryRow(ctx, countChangesSQL, int64(user), after, atMost).Scan(&n); err != nil {
		return 0, classify(op, "the changes", err)
	}
	return int(min(n, int64(atMost))), nil
}
