package wsapi

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/core"
	"github.com/natter-chat/natter/internal/metrics"
	"github.com/natter-chat/natter/internal/protocol"
)

// dispatcher answers client frames for any transport: the WebSocket and
// the HTTP fallback share it, so they behave the same. reply is called
// exactly once per frame that has an answer (every frame but typing
// without a ref), possibly later and from another goroutine (a send's
// ack comes after its commit); it must not block.
type dispatcher struct {
	svc *core.Service
	met *metrics.Metrics
	log *slog.Logger
}

func (d *dispatcher) handle(p core.Principal, f protocol.ClientFrame, reply func([]byte)) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var err error
	switch f.Type {
	case protocol.TypeSend:
		d.send(p, f, reply)
		return
	case protocol.TypeRead, protocol.TypeDelivered:
		err = d.receipt(ctx, p, f, reply)
	case protocol.TypeSync:
		err = d.sync(ctx, p, f, reply)
	case protocol.TypeChanges:
		err = d.changes(ctx, p, f, reply)
	case protocol.TypeEdit, protocol.TypeDelete, protocol.TypeReact:
		err = d.action(ctx, p, f, reply)
	case protocol.TypeTyping:
		err = d.typing(ctx, p, f, reply)
	case protocol.TypePing:
		reply(protocol.Encode(protocol.PongFrame{Type: protocol.TypePong, Ref: f.Ref}))
	case protocol.TypeAuth:
		err = chat.Errorf(chat.CodeInvalidArgument, "already authenticated")
	default:
		err = chat.Errorf(chat.CodeUnknownType, "unknown frame type %q", truncate(f.Type, 32))
	}
	if err != nil {
		reply(d.errorFrame(p, f.Ref, err))
	}
}

// errorFrame encodes err as an error frame answering ref.
func (d *dispatcher) errorFrame(p core.Principal, ref []byte, err error) []byte {
	code := chat.ErrorCode(err)
	if code == chat.CodeInternal {
		d.log.Error("frame failed", "user", p.User, "err", err)
	}
	d.met.Errors.WithLabelValues(string(code)).Inc()
	retry, cursor := 0, int64(-1)
	var re *core.RetryError
	if errors.As(err, &re) {
		retry = int((re.After + time.Second - 1) / time.Second)
	}
	var rs *core.ResyncError
	if errors.As(err, &rs) {
		cursor = rs.Cursor
	}
	return protocol.AppendErrorFrameCursor(nil, ref, code, chat.ErrorMessage(err), retry, cursor)
}

func (d *dispatcher) send(p core.Principal, f protocol.ClientFrame, reply func([]byte)) {
	start := time.Now()
	conv, err := chat.ParseID("conv", f.Conv)
	var replyTo int64
	if err == nil && f.ReplyTo != "" {
		replyTo, err = chat.ParseID("reply_to", f.ReplyTo)
	}
	if err != nil {
		d.met.Sends.WithLabelValues(string(chat.CodeInvalidArgument)).Inc()
		reply(d.errorFrame(p, f.Ref, err))
		return
	}
	ref := f.Ref
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	out := core.Outgoing{Conv: chat.ConversationID(conv), ClientID: f.ClientID, Text: f.Text, ReplyTo: chat.MessageID(replyTo), Attachments: core.AttachmentIDs(f.Attachments)}
	d.svc.SendMessageAsync(ctx, p, out, func(r core.SendResult, err error) {
		cancel()
		if err != nil {
			d.met.Sends.WithLabelValues(string(chat.ErrorCode(err))).Inc()
			reply(d.errorFrame(p, ref, err))
			return
		}
		result := "ok"
		if r.Duplicate {
			result = "duplicate"
		}
		d.met.Sends.WithLabelValues(result).Inc()
		reply(protocol.AppendAckFrame(make([]byte, 0, 256+len(r.Message.Text)), ref, &r.Message, r.Duplicate))
		d.met.SendLatency.Observe(time.Since(start).Seconds())
	})
}

func (d *dispatcher) receipt(ctx context.Context, p core.Principal, f protocol.ClientFrame, reply func([]byte)) error {
	conv, err := chat.ParseID("conv", f.Conv)
	if err != nil {
		return err
	}
	mark := d.svc.MarkRead
	if f.Type == protocol.TypeDelivered {
		mark = d.svc.MarkDelivered
	}
	m, err := mark(ctx, p, chat.ConversationID(conv), f.Seq)
	if err != nil {
		return err
	}
	reply(protocol.Encode(protocol.ReceiptAckFrame{Type: protocol.TypeAck, Ref: f.Ref, Conv: f.Conv, ReadSeq: m.ReadSeq, DeliveredSeq: m.DeliveredSeq}))
	return nil
}

func (d *dispatcher) sync(ctx context.Context, p core.Principal, f protocol.ClientFrame, reply func([]byte)) error {
	conv, err := chat.ParseID("conv", f.Conv)
	if err != nil {
		return err
	}
	if f.After < 0 || f.Limit < 0 {
		return chat.Errorf(chat.CodeInvalidArgument, "after and limit must not be negative")
	}
	limit := f.Limit
	if limit == 0 {
		limit = core.MaxHistoryLimit
	}
	msgs, more, err := d.svc.History(ctx, p, chat.MessageQuery{Conv: chat.ConversationID(conv), After: f.After, Forward: true, Limit: limit})
	if err != nil {
		return err
	}
	reply(protocol.Encode(protocol.MessagesFrame{Type: protocol.TypeMessages, Ref: f.Ref, Conv: f.Conv, Messages: protocol.FromMessages(msgs), HasMore: more}))
	return nil
}

func (d *dispatcher) changes(ctx context.Context, p core.Principal, f protocol.ClientFrame, reply func([]byte)) error {
	cs, err := d.svc.Changes(ctx, p, f.Cursor, f.Limit)
	if err != nil {
		return err
	}
	page := protocol.FromChanges(cs)
	reply(protocol.Encode(protocol.ChangesFrame{Type: protocol.TypeChanges, Ref: f.Ref, Changes: page.Changes, Cursor: page.Cursor, HasMore: page.HasMore}))
	return nil
}

func (d *dispatcher) action(ctx context.Context, p core.Principal, f protocol.ClientFrame, reply func([]byte)) error {
	conv, err := chat.ParseID("conv", f.Conv)
	if err != nil {
		return err
	}
	id, err := chat.ParseID("id", f.ID)
	if err != nil {
		return err
	}
	var m chat.Message
	switch f.Type {
	case protocol.TypeEdit:
		m, err = d.svc.EditMessage(ctx, p, chat.ConversationID(conv), chat.MessageID(id), f.Text)
	case protocol.TypeDelete:
		m, err = d.svc.DeleteMessage(ctx, p, chat.ConversationID(conv), chat.MessageID(id))
	default:
		m, err = d.svc.React(ctx, p, chat.ConversationID(conv), chat.MessageID(id), f.Emoji, !f.Remove)
	}
	if err != nil {
		return err
	}
	reply(protocol.AppendAckFrame(make([]byte, 0, 256+len(m.Text)), f.Ref, &m, false))
	return nil
}

func (d *dispatcher) typing(ctx context.Context, p core.Principal, f protocol.ClientFrame, reply func([]byte)) error {
	conv, err := chat.ParseID("conv", f.Conv)
	if err != nil {
		return err
	}
	if f.State != "start" && f.State != "stop" {
		return chat.Errorf(chat.CodeInvalidArgument, `state must be "start" or "stop"`)
	}
	if err := d.svc.Typing(ctx, p, chat.ConversationID(conv), f.State == "start"); err != nil {
		return err
	}
	if len(f.Ref) > 0 {
		reply(protocol.Encode(protocol.OKFrame{Type: protocol.TypeAck, Ref: f.Ref}))
	}
	return nil
}

func frameLabel(t string) string {
	switch t {
	case protocol.TypeAuth, protocol.TypeSend, protocol.TypeRead, protocol.TypeSync, protocol.TypePing,
		protocol.TypeEdit, protocol.TypeDelete, protocol.TypeReact, protocol.TypeDelivered, protocol.TypeTyping,
		protocol.TypePresence, protocol.TypeChanges:
		return t
	}
	return "unknown"
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
