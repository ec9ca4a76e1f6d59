package postgres

import (
	"context"
	"errors"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/natter-chat/natter/internal/chat"
)

const conversationColumns = `id, kind, title, created_by, created_at, last_seq, pos`

func scanConversation(row pgx.Row) (chat.Conversation, error) {
	var c chat.Conversation
	if err := row.Scan(&c.ID, &c.Kind, &c.Title, &c.CreatedBy, &c.CreatedAt, &c.LastSeq, &c.Pos); err != nil {
		return chat.Conversation{}, err
	}
	c.CreatedAt = c.CreatedAt.UTC()
	return c, nil
}

// directKey is the value of conversations.direct_key for the pair of users:
// the same whichever of them starts the conversation.
func directKey(a, b chat.UserID) string {
	if a > b {
		a, b = b, a
	}
	return strconv.FormatInt(int64(a), 10) + ":" + strconv.FormatInt(int64(b), 10)
}

// lockConversation locks conv's row in tx FOR NO KEY UPDATE, which
// serializes the transactions that append to conv or change its members or
// title; inserts that merely refer to the row (FOR KEY SHARE) go on. It
// returns pgx.ErrNoRows when conv does not exist.
func lockConversation(ctx context.Context, tx pgx.Tx, conv chat.ConversationID) (chat.Conversation, error) {
	return scanConversation(tx.QueryRow(ctx, `SELECT `+conversationColumns+` FROM conversations WHERE id = $1 FOR NO KEY UPDATE`, int64(conv)))
}

// CreateConversation implements chat.Store. c.LastSeq is ignored (a new
// conversation has no message) and each member's Conv is set to c.ID; a
// user listed twice is added once, with the first listing. A direct
// conversation needs exactly two distinct members (CodeInvalidArgument
// otherwise). One direct conversation per pair is the UNIQUE direct_key: an
// insert that hits it stores nothing and the existing conversation is
// returned. A member or creator that is no user gives CodeNotFound. A new
// conversation takes a change position, and then each member one, in
// order; an existing direct conversation takes none.
func (s *Store) CreateConversation(ctx context.Context, c chat.Conversation, members []chat.Member) (chat.Conversation, bool, error) {
	const op = "postgres.CreateConversation"
	var key *string
	if c.Kind == chat.KindDirect {
		if len(members) != 2 || members[0].User == members[1].User {
			return chat.Conversation{}, false, newError(op, chat.CodeInvalidArgument, "a direct conversation has exactly two members")
		}
		k := directKey(members[0].User, members[1].User)
		key = &k
		// Opening an existing direct conversation is the common case: it
		// needs no transaction and no position.
		existing, err := scanConversation(s.pool.QueryRow(ctx, `SELECT `+conversationColumns+` FROM conversations WHERE direct_key = $1`, k))
		if err == nil {
			return existing, false, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return chat.Conversation{}, false, classify(op, "the conversation", err)
		}
	}
	c.LastSeq, c.CreatedAt = 0, ms(c.CreatedAt)
	members = distinctMembers(members)
	var out chat.Conversation
	var created bool
	err := s.write(ctx, op, "the conversation", func(tx pgx.Tx) error {
		// Nothing is locked before the positions: a concurrent create of
		// the same pair waits for them, then finds the pair's row.
		first, err := takePositions(ctx, tx, 1+len(members))
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO conversations (id, kind, title, created_by, created_at, last_seq, direct_key, last_activity_at, pos)
			VALUES ($1, $2, $3, $4, $5, 0, $6, $5, $7) ON CONFLICT (direct_key) DO NOTHING`,
			int64(c.ID), string(c.Kind), c.Title, int64(c.CreatedBy), c.CreatedAt, key, first)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			out, err = scanConversation(tx.QueryRow(ctx, `SELECT `+conversationColumns+` FROM conversations WHERE direct_key = $1`, key))
			if err != nil {
				return err
			}
			return errUnchanged // gives the positions back
		}
		if _, err := insertMembers(ctx, tx, c.ID, members, first+1); err != nil {
			return err
		}
		out, created = c, true
		out.Pos = first
		return nil
	})
	if err != nil {
		return chat.Conversation{}, false, err
	}
	return out, created, nil
}

// distinctMembers returns members without the later listings of a user.
func distinctMembers(members []chat.Member) []chat.Member {
	seen := make(map[chat.UserID]bool, len(members))
	out := make([]chat.Member, 0, len(members))
	for _, m := range members {
		if !seen[m.User] {
			seen[m.User] = true
			out = append(out, m)
		}
	}
	return out
}

// GetConversation returns the conversation with id, or CodeNotFound.
func (s *Store) GetConversation(ctx context.Context, id chat.ConversationID) (chat.Conversation, error) {
	const op = "postgres.GetConversation"
	c, err := scanConversation(s.pool.QueryRow(ctx, `SELECT `+conversationColumns+` FROM conversations WHERE id = $1`, int64(id)))
	if errors.Is(err, pgx.ErrNoRows) {
		return chat.Conversation{}, newError(op, chat.CodeNotFound, "conversation not found")
	}
	if err != nil {
		return chat.Conversation{}, classify(op, "the conversation", err)
	}
	return c, nil
}

// ListConversationIDs returns the ids of user's conversations in id order.
func (s *Store) ListConversationIDs(ctx context.Context, user chat.UserID) ([]chat.ConversationID, error) {
	const op = "postgres.ListConversationIDs"
	rows, err := s.pool.Query(ctx, `SELECT conv_id FROM members WHERE user_id = $1 ORDER BY conv_id`, int64(user))
	if err != nil {
		return nil, classify(op, "the conversations", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[chat.ConversationID])
	if err != nil {
		return nil, classify(op, "the conversations", err)
	}
	return ids, nil
}

// ListConversations implements chat.Store: user's conversations ordered by
// last activity (the newest message's SentAt, else the creation time), newest
// first, then by id descending. All queries run in one snapshot, so the
// summaries, their last messages and members agree.
func (s *Store) ListConversations(ctx context.Context, user chat.UserID) ([]chat.ConversationSummary, error) {
	const op = "postgres.ListConversations"
	var summaries []chat.ConversationSummary
	err := s.read(ctx, op, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT c.id, c.kind, c.title, c.created_by, c.created_at, c.last_seq, c.pos, me.read_seq,
				(SELECT count(*) FROM messages u WHERE u.conv_id = c.id AND u.seq > me.read_seq AND u.sender_id <> me.user_id)
			FROM members me
			JOIN conversations c ON c.id = me.conv_id
			WHERE me.user_id = $1
			ORDER BY c.last_activity_at DESC, c.id DESC`, int64(user))
		if err != nil {
			return err
		}
		if summaries, err = collect(rows, scanSummary); err != nil || len(summaries) == 0 {
			return err
		}
		index := make(map[chat.ConversationID]*chat.ConversationSummary, len(summaries))
		for i := range summaries {
			index[summaries[i].ID] = &summaries[i]
		}
		rows, err = tx.Query(ctx, `SELECT `+messageColumns+`
			FROM members me
			JOIN conversations c ON c.id = me.conv_id
			JOIN messages m ON m.conv_id = c.id AND m.seq = c.last_seq`+withReactions+`
			WHERE me.user_id = $1`, int64(user))
		if err != nil {
			return err
		}
		last, err := collect(rows, scanMessage)
		if err != nil {
			return err
		}
		for i := range last {
			index[last[i].Conv].LastMessage = &last[i]
		}
		rows, err = tx.Query(ctx, `SELECT `+memberColumns+` FROM members
			WHERE conv_id IN (SELECT conv_id FROM members WHERE user_id = $1)
			ORDER BY conv_id, joined_at, user_id`, int64(user))
		if err != nil {
			return err
		}
		members, err := collect(rows, scanMember)
		for _, m := range members {
			index[m.Conv].Members = append(index[m.Conv].Members, m)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return summaries, nil
}

func scanSummary(row pgx.Row) (chat.ConversationSummary, error) {
	var sum chat.ConversationSummary
	if err := row.Scan(&sum.ID, &sum.Kind, &sum.Title, &sum.CreatedBy, &sum.CreatedAt, &sum.LastSeq, &sum.Pos,
		&sum.ReadSeq, &sum.Unread); err != nil {
		return chat.ConversationSummary{}, err
	}
	sum.CreatedAt = sum.CreatedAt.UTC()
	return sum, nil
}
