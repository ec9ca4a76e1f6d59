package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"slices"

	"github.com/natter-chat/natter/internal/chat"
)

// A user's changes come from five sources, each read in position order:
// the messages, members and member_left records of the conversations the
// user is a member of (through the (conv_id, pos) indexes, at most limit+1
// rows per conversation), the conversations themselves, and the user's own
// member_left records (through (user_id, pos)). ListChanges merges the
// first limit+1 of each: if any source has more, the page is full.

// changeSourcesSQL select, for user ?1, rows with pos > ?2 in pos order,
// at most ?3. Each per-conversation subquery stops after ?3 rows, so a
// sync from an old cursor reads no more than ?3 rows per conversation.
const (
	messageChangesSQL = `SELECT ` + messageColumns + ` FROM members me
		JOIN messages m ON m.id IN (SELECT i.id FROM messages i
			WHERE i.conv_id = me.conv_id AND i.pos > ?2 ORDER BY i.pos LIMIT ?3)
		WHERE me.user_id = ?1 ORDER BY m.pos LIMIT ?3`
	memberChangesSQL = `SELECT x.conv_id, x.user_id, x.role, x.joined_at, x.read_seq, x.delivered_seq, x.pos FROM members me
		JOIN members x ON x.conv_id = me.conv_id AND x.user_id IN (SELECT i.user_id FROM members i
			WHERE i.conv_id = me.conv_id AND i.pos > ?2 ORDER BY i.pos LIMIT ?3)
		WHERE me.user_id = ?1 ORDER BY x.pos LIMIT ?3`
	departedChangesSQL = `SELECT d.conv_id, d.user_id, d.role, d.joined_at, d.read_seq, d.delivered_seq, d.pos FROM members me
		JOIN departed_members d ON d.conv_id = me.conv_id AND d.user_id IN (SELECT i.user_id FROM departed_members i
			WHERE i.conv_id = me.conv_id AND i.pos > ?2 ORDER BY i.pos LIMIT ?3)
		WHERE me.user_id = ?1 ORDER BY d.pos LIMIT ?3`
	ownDepartureChangesSQL = `SELECT conv_id, user_id, role, joined_at, read_seq, delivered_seq, pos FROM departed_members
		WHERE user_id = ?1 AND pos > ?2 ORDER BY pos LIMIT ?3`
	conversationChangesSQL = `SELECT c.id, c.kind, c.title, c.created_by, c.created_at, c.last_seq, c.pos FROM members me
		JOIN conversations c ON c.id = me.conv_id
		WHERE me.user_id = ?1 AND c.pos > ?2 ORDER BY c.pos LIMIT ?3`
)

// ListChanges implements chat.Store. All sources are read in one read
// transaction, so a page is one snapshot; since positions commit in order,
// a page never misses a change below its Cursor that a later page would
// find. A change's Pos equals the Pos of what it carries. limit is clamped
// to [1, chat.MaxPageSize].
func (s *Store) ListChanges(ctx context.Context, user chat.UserID, after int64, limit int) (chat.Changes, error) {
	const op = "sqlite.ListChanges"
	limit = min(max(limit, 1), chat.MaxPageSize)
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return chat.Changes{}, chat.Unavailable(op, err)
	}
	defer tx.Rollback()
	args := []any{int64(user), after, limit + 1}

	var changes []chat.Change
	msgs, err := queryAll(ctx, tx, messageChangesSQL, args, scanMessage)
	if err != nil {
		return chat.Changes{}, chat.Unavailable(op, err)
	}
	for i := range msgs {
		changes = append(changes, chat.Change{Pos: msgs[i].Pos, Kind: chat.ChangeMessage, Message: &msgs[i]})
	}
	for _, src := range []struct {
		sql  string
		kind chat.ChangeKind
	}{
		{memberChangesSQL, chat.ChangeMember},
		{departedChangesSQL, chat.ChangeMemberLeft},
		{ownDepartureChangesSQL, chat.ChangeMemberLeft},
	} {
		members, err := queryAll(ctx, tx, src.sql, args, scanMember)
		if err != nil {
			return chat.Changes{}, chat.Unavailable(op, err)
		}
		for i := range members {
			changes = append(changes, chat.Change{Pos: members[i].Pos, Kind: src.kind, Member: &members[i]})
		}
	}
	convs, err := queryAll(ctx, tx, conversationChangesSQL, args, scanConversation)
	if err != nil {
		return chat.Changes{}, chat.Unavailable(op, err)
	}
	for i := range convs {
		changes = append(changes, chat.Change{Pos: convs[i].Pos, Kind: chat.ChangeConversation, Conversation: &convs[i]})
	}

	slices.SortFunc(changes, func(a, b chat.Change) int { return cmp.Compare(a.Pos, b.Pos) })
	page := chat.Changes{Changes: changes, Cursor: after}
	if len(changes) > limit {
		page.Changes, page.HasMore = changes[:limit], true
	}
	if n := len(page.Changes); n > 0 {
		page.Cursor = page.Changes[n-1].Pos
	}
	var pageMsgs []*chat.Message
	for _, c := range page.Changes {
		if c.Message != nil {
			pageMsgs = append(pageMsgs, c.Message)
		}
	}
	if err := attachReactions(ctx, tx, pageMsgs...); err != nil {
		return chat.Changes{}, chat.Unavailable(op, err)
	}
	return page, nil
}

// queryAll runs query with args and scans every row with scan.
func queryAll[T any](ctx context.Context, q querier, query string, args []any, scan func(scanner) (T, error)) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return collect(rows, scan)
}

// CountChanges implements chat.Store: it counts what ListChanges would
// return from after, reading no more than atMost rows of each source, and
// returns at most atMost; 0 when atMost <= 0.
func (s *Store) CountChanges(ctx context.Context, user chat.UserID, after int64, atMost int) (int, error) {
	const op = "sqlite.CountChanges"
	if atMost <= 0 {
		return 0, nil
	}
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return 0, chat.Unavailable(op, err)
	}
	defer tx.Rollback()
	total := 0
	for _, query := range []string{
		`SELECT 1 FROM members me JOIN messages m ON m.conv_id = me.conv_id AND m.pos > ?2 WHERE me.user_id = ?1`,
		`SELECT 1 FROM members me JOIN members x ON x.conv_id = me.conv_id AND x.pos > ?2 WHERE me.user_id = ?1`,
		`SELECT 1 FROM members me JOIN departed_members d ON d.conv_id = me.conv_id AND d.pos > ?2 WHERE me.user_id = ?1`,
		`SELECT 1 FROM departed_members WHERE user_id = ?1 AND pos > ?2`,
		`SELECT 1 FROM members me JOIN conversations c ON c.id = me.conv_id AND c.pos > ?2 WHERE me.user_id = ?1`,
	} {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM (`+query+` LIMIT ?3)`, int64(user), after, atMost-total).Scan(&n); err != nil {
			return 0, chat.Unavailable(op, err)
		}
		if total += n; total >= atMost {
			return atMost, nil
		}
	}
	return total, nil
}
