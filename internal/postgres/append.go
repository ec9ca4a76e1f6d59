package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/natter-chat/natter/internal/chat"
)

// errRaced marks a batch whose write statement hit a unique or foreign key
// violation that its checks, made moments before under the conversations'
// row locks, did not foresee: a message id taken meanwhile in another
// conversation. The batch is run again and the checks then attribute it
// to its draft.
var errRaced = errors.New("postgres: the batch raced another transaction")

// AppendMessages implements chat.Store: the whole batch is one transaction,
// committed (synchronously) before it returns. The transaction first locks
// the rows of the batch's conversations, in id order, so concurrent batches
// on any node serialize per conversation and cannot deadlock; under those
// locks it reads the conversations' last seqs and the stored messages that
// drafts retry, assigns seqs in Go, then takes the change positions and
// writes every new message and last_seq in one statement. Each new message
// takes the next change position, in batch order; a duplicate or a failed
// draft takes none, and a batch with nothing new takes none and writes
// nothing. A draft with an empty ClientID is stored with a NULL client_id
// and so is never taken for a retry; a duplicate yields the stored message
// as it is now (edited, deleted, with its reactions).
//
// Per-draft errors: CodeInvalidArgument for a text or client id that holds
// a NUL character or invalid UTF-8 (PostgreSQL cannot store them), and for
// a ReplyTo that is neither a stored message of the draft's conversation
// nor an earlier new message of it in the batch; CodeNotFound for a
// conversation or sender that does not exist; CodeConflict for a message
// id already used. Any other failure rolls back the batch and returns
// CodeUnavailable (CodeInternal for a bug) with nil results; a deadlock, a
// serialization failure or a message id taken meanwhile elsewhere is
// retried first.
func (s *Store) AppendMessages(ctx context.Context, drafts []chat.Draft) ([]chat.AppendResult, error) {
	const op = "postgres.AppendMessages"
	if len(drafts) == 0 {
		return []chat.AppendResult{}, nil
	}
	var results []chat.AppendResult
	err := s.write(ctx, op, "the message", func(tx pgx.Tx) error {
		var err error
		results, err = appendBatch(ctx, tx, drafts)
		return err
	})
	if err != nil {
		// The batch as a whole never fails for a reason its drafts' senders
		// caused: those are per-draft results.
		if code := chat.ErrorCode(err); code != chat.CodeUnavailable && code != chat.CodeInternal {
			err = chat.Unavailable(op, err)
		}
		return nil, err
	}
	return results, nil
}

// batchState is what appendBatch reads under the conversations' locks.
type batchState struct {
	lastSeq map[chat.ConversationID]int64          // of the existing conversations named
	retries map[retryKey]chat.Message              // stored messages that drafts repeat
	senders map[chat.UserID]bool                   // senders that are users
	stored  map[chat.MessageID]chat.ConversationID // stored messages among the reply targets and draft ids
}

// retryKey is a message's idempotency key.
type retryKey struct {
	conv   chat.ConversationID
	sender chat.UserID
	client string
}

// appendBatch stores drafts within tx and returns their results. It
// returns errUnchanged (with the results, for the caller to use) when no
// draft is new.
func appendBatch(ctx context.Context, tx pgx.Tx, drafts []chat.Draft) ([]chat.AppendResult, error) {
	st, err := readBatchState(ctx, tx, drafts)
	if err != nil {
		return nil, err
	}
	results, fresh, echoes := planBatch(st, drafts)
	if len(fresh) == 0 {
		return results, errUnchanged
	}
	if err := writeBatch(ctx, tx, results, fresh); err != nil {
		return nil, err
	}
	for i, j := range echoes {
		results[i].Message = results[j].Message // now with its position
	}
	return results, nil
}

// readBatchState locks the conversations the drafts name, in id order, and
// then reads, in the same round trip, everything the drafts' checks need.
func readBatchState(ctx context.Context, tx pgx.Tx, drafts []chat.Draft) (*batchState, error) {
	var convs, senders, lookups []int64
	var keyConvs, keySenders []int64
	var keyClients []string
	for _, d := range drafts {
		convs = append(convs, int64(d.Conv))
		senders = append(senders, int64(d.Sender))
		lookups = append(lookups, int64(d.ID))
		if d.ReplyTo != 0 {
			lookups = append(lookups, int64(d.ReplyTo))
		}
		if d.ClientID != "" && storable(d.ClientID) { // an unstorable one would fail the query
			keyConvs, keySenders, keyClients = append(keyConvs, int64(d.Conv)), append(keySenders, int64(d.Sender)), append(keyClients, d.ClientID)
		}
	}
	slices.Sort(convs)
	convs = slices.Compact(convs)

	b := &pgx.Batch{}
	b.Queue(`SELECT id, last_seq FROM conversations WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`, convs)
	b.Queue(`SELECT `+messageColumns+` FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS k(conv_id, sender_id, client_id)
		JOIN messages m ON m.conv_id = k.conv_id AND m.sender_id = k.sender_id AND m.client_id = k.client_id`+withReactions,
		keyConvs, keySenders, keyClients)
	b.Queue(`SELECT id FROM users WHERE id = ANY($1)`, senders)
	b.Queue(`SELECT id, conv_id FROM messages WHERE id = ANY($1)`, lookups)
	br := tx.SendBatch(ctx, b)
	defer br.Close()

	st := &batchState{lastSeq: map[chat.ConversationID]int64{}, retries: map[retryKey]chat.Message{},
		senders: map[chat.UserID]bool{}, stored: map[chat.MessageID]chat.ConversationID{}}
	for _, read := range []func(pgx.Row) error{
		func(row pgx.Row) error {
			var id chat.ConversationID
			var seq int64
			err := row.Scan(&id, &seq)
			st.lastSeq[id] = seq
			return err
		},
		func(row pgx.Row) error {
			m, err := scanMessage(row)
			st.retries[retryKey{m.Conv, m.Sender, m.ClientID}] = m
			return err
		},
		func(row pgx.Row) error {
			var id chat.UserID
			err := row.Scan(&id)
			st.senders[id] = true
			return err
		},
		func(row pgx.Row) error {
			var id chat.MessageID
			var conv chat.ConversationID
			err := row.Scan(&id, &conv)
			st.stored[id] = conv
			return err
		},
	} {
		if err := queryEach(br, read); err != nil {
			return nil, err
		}
	}
	return st, br.Close()
}

// queryEach reads the next query's result of br and calls f for each row.
func queryEach(br pgx.BatchResults, f func(pgx.Row) error) error {
	rows, err := br.Query()
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := f(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// planBatch checks each draft against st and the drafts before it, and
// assigns the new ones their seqs. It returns the results, in which the
// new messages still lack their positions, the indexes of the new drafts,
// in batch order, and the drafts that repeat a new draft of the batch
// (draft index -> index of the new draft), whose results must copy its
// message once it has its position.
func planBatch(st *batchState, drafts []chat.Draft) (results []chat.AppendResult, fresh []int, echoes map[int]int) {
	const op = "postgres.AppendMessages"
	results = make([]chat.AppendResult, len(drafts))
	inBatch := make(map[retryKey]int, len(drafts))            // first new draft of each idempotency key
	batchConv := make(map[chat.MessageID]chat.ConversationID) // new messages of the batch
	echoes = map[int]int{}
	for i := range drafts {
		d := &drafts[i]
		k := retryKey{d.Conv, d.Sender, d.ClientID}
		last, convExists := st.lastSeq[d.Conv]
		replyConv, replyStored := st.stored[d.ReplyTo]
		if c, ok := batchConv[d.ReplyTo]; ok {
			replyConv, replyStored = c, true
		}
		_, idStored := st.stored[d.ID]
		_, idInBatch := batchConv[d.ID]
		switch {
		case !storable(d.Text) || !storable(d.ClientID):
			results[i].Err = newError(op, chat.CodeInvalidArgument, "the text or client id holds a NUL character or invalid UTF-8")
			continue
		case !convExists:
			results[i].Err = newError(op, chat.CodeNotFound, "conversation not found")
			continue
		case d.ClientID != "" && hasKey(st.retries, k):
			results[i] = chat.AppendResult{Message: st.retries[k], Duplicate: true}
			continue
		case d.ClientID != "" && hasKey(inBatch, k):
			results[i].Duplicate, echoes[i] = true, inBatch[k]
			continue
		case d.ReplyTo != 0 && (!replyStored || replyConv != d.Conv):
			results[i].Err = newError(op, chat.CodeInvalidArgument, "reply_to is not a message of this conversation")
			continue
		case !st.senders[d.Sender]:
			results[i].Err = newError(op, chat.CodeNotFound, "the sender is not a user")
			continue
		case idStored || idInBatch:
			results[i].Err = newError(op, chat.CodeConflict, "the message id is already used")
			continue
		}
		if d.ClientID != "" {
			inBatch[k] = i
		}
		last++
		st.lastSeq[d.Conv] = last
		batchConv[d.ID] = d.Conv
		results[i].Message = newMessage(d, last, 0)
		fresh = append(fresh, i)
	}
	return results, fresh, echoes
}

func hasKey[K comparable, V any](m map[K]V, k K) bool {
	_, ok := m[k]
	return ok
}

// storable reports whether PostgreSQL can store s as text.
func storable(s string) bool { return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 }

// writeBatchSQL takes the batch's change positions and stores its new
// messages and the conversations' new last seqs in one statement, so the
// positions row stays locked for one round trip and the commit. The
// messages take positions in the order of the arrays.
const writeBatchSQL = `WITH p AS (
		UPDATE positions SET pos = pos + $1 WHERE id = 1 RETURNING pos
	), inserted AS (
		INSERT INTO messages (id, conv_id, seq, sender_id, client_id, text, sent_at, reply_to, mentions, pos)
		SELECT v.id, v.conv_id, v.seq, v.sender_id, v.client_id, v.text, v.sent_at, v.reply_to, v.mentions::bigint[], p.pos - $1 + v.n
		FROM p, unnest($2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::text[], $7::text[], $8::timestamptz[],
			$9::bigint[], $10::text[]) WITH ORDINALITY AS v(id, conv_id, seq, sender_id, client_id, text, sent_at, reply_to, mentions, n)
	), advanced AS (
		UPDATE conversations c SET last_seq = a.seq, last_activity_at = a.sent_at
		FROM unnest($11::bigint[], $12::bigint[], $13::timestamptz[]) AS a(id, seq, sent_at) WHERE c.id = a.id
	)
	SELECT pos FROM p`

// writeBatch stores the new messages results[fresh] and sets their
// positions.
func writeBatch(ctx context.Context, tx pgx.Tx, results []chat.AppendResult, fresh []int) error {
	n := len(fresh)
	ids, convs, seqs, senders := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	clientIDs, texts, mentions := make([]*string, n), make([]string, n), make([]*string, n)
	sentAts, replyTos := make([]time.Time, n), make([]*int64, n)
	newest := map[chat.ConversationID]*chat.Message{}
	for k, i := range fresh {
		m := &results[i].Message
		ids[k], convs[k], seqs[k], senders[k] = int64(m.ID), int64(m.Conv), m.Seq, int64(m.Sender)
		texts[k], sentAts[k], mentions[k] = m.Text, m.SentAt, mentionsLiteral(m.Mentions)
		if m.ClientID != "" {
			clientIDs[k] = &m.ClientID
		}
		if m.ReplyTo != 0 {
			reply := int64(m.ReplyTo)
			replyTos[k] = &reply
		}
		newest[m.Conv] = m // fresh is in seq order per conversation
	}
	var advConvs, advSeqs []int64
	var advAt []time.Time
	for conv, m := range newest {
		advConvs, advSeqs, advAt = append(advConvs, int64(conv)), append(advSeqs, m.Seq), append(advAt, m.SentAt)
	}
	var last int64
	err := tx.QueryRow(ctx, writeBatchSQL, n, ids, convs, seqs, senders, clientIDs, texts, sentAts, replyTos, mentions,
		advConvs, advSeqs, advAt).Scan(&last)
	switch sqlState(err) {
	case uniqueViolation, foreignKeyViolation:
		return fmt.Errorf("%w: %w", errRaced, err)
	}
	if err != nil {
		return err
	}
	for k, i := range fresh {
		results[i].Message.Pos = last - int64(n) + int64(k) + 1
	}
	return nil
}
