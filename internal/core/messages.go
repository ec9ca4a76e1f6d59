package core

import (
	"context"
	"strings"
	"unicode/utf8"

	"github.com/natter-chat/natter/internal/chat"
)

// SendResult is the outcome of a send: the stored message, and whether it
// had been stored before (an idempotent retry returns the original).
type SendResult struct {
	Message   chat.Message
	Duplicate bool
}

// Send stores a message and returns it once it is durable. It blocks
// until then or until ctx is done (the message may still be stored: retry
// with the same clientID to learn its fate).
// Errors: not_found, invalid_argument, too_large, unavailable.
func (s *Service) Send(ctx context.Context, p Principal, conv chat.ConversationID, clientID, text string, replyTo chat.MessageID) (SendResult, error) {
	return s.SendMessage(ctx, p, Outgoing{Conv: conv, ClientID: clientID, Text: text, ReplyTo: replyTo})
}

// SendMessage is Send for a message that may carry attachments (see
// Outgoing). Errors: those of Send, and not_found or conflict for an
// attachment that is not the caller's ready, unsent upload to conv.
func (s *Service) SendMessage(ctx context.Context, p Principal, o Outgoing) (SendResult, error) {
	type outcome struct {
		r   SendResult
		err error
	}
	done := make(chan outcome, 1)
	s.SendMessageAsync(ctx, p, o, func(r SendResult, err error) { done <- outcome{r, err} })
	select {
	case o := <-done:
		return o.r, o.err
	case <-ctx.Done():
		return SendResult{}, chat.Unavailable("send", ctx.Err())
	}
}

// SendAsync checks and queues a message for the next commit and calls
// done exactly once: with the stored message after the commit, or with
// an error. done runs on the appender goroutine (or the caller's, for
// errors found before queuing) and must not block. SendAsync itself blocks
// only while the commit queue is full.
func (s *Service) SendAsync(ctx context.Context, p Principal, conv chat.ConversationID, clientID, text string, replyTo chat.MessageID, done func(SendResult, error)) {
	s.SendMessageAsync(ctx, p, Outgoing{Conv: conv, ClientID: clientID, Text: text, ReplyTo: replyTo}, done)
}

// SendMessageAsync is SendAsync for a message that may carry attachments:
// they are given to the message (see chat.AttachmentStore.ClaimAttachments)
// before it is queued, so the message is never stored without them.
func (s *Service) SendMessageAsync(ctx context.Context, p Principal, o Outgoing, done func(SendResult, error)) {
	conv, clientID, text, replyTo := o.Conv, o.ClientID, o.Text, o.ReplyTo
	if err := s.validSend(clientID, text, len(o.Attachments)); err != nil {
		done(SendResult{}, err)
		return
	}
	if err := s.members.check(ctx, conv, p.User); err != nil {
		done(SendResult{}, err)
		return
	}
	if err := s.directs.check(ctx, conv, p.User); err != nil { // blocks; cached, see directCache
		done(SendResult{}, err)
		return
	}
	if ok, wait := s.sendLimit.Allow(p.User.String()); !ok {
		done(SendResult{}, &RetryError{Err: chat.Errorf(chat.CodeRateLimited, "sending too fast; retry later"), After: wait})
		return
	}
	var mentions []chat.UserID
	if strings.IndexByte(text, '@') >= 0 {
		var err error
		if mentions, err = s.mentions(ctx, conv, text); err != nil {
			done(SendResult{}, err)
			return
		}
	}
	d := chat.Draft{ID: chat.MessageID(s.ids.NextID()), Conv: conv, Sender: p.User, ClientID: clientID, Text: text, SentAt: s.now(), ReplyTo: replyTo, Mentions: mentions}
	attached, err := s.claimAttachments(ctx, d, o.Attachments)
	if err != nil {
		done(SendResult{}, err)
		return
	}
	if err := s.appender.enqueue(ctx, d, p.Conn, attached, done); err != nil {
		done(SendResult{}, err)
	}
}

func (s *Service) validSend(clientID, text string, attachments int) error {
	switch {
	case clientID == "":
		return chat.Errorf(chat.CodeInvalidArgument, "client_id is required (an idempotency key chosen by the client)")
	case len(clientID) > s.opts.MaxClientIDLen || !utf8.ValidString(clientID):
		return chat.Errorf(chat.CodeInvalidArgument, "client_id must be valid UTF-8 of at most %d bytes", s.opts.MaxClientIDLen)
	}
	if text == "" && attachments > 0 {
		return nil // a file alone is a message
	}
	return s.validText(text)
}

func (s *Service) validText(text string) error {
	switch {
	case text == "":
		return chat.Errorf(chat.CodeInvalidArgument, "text must not be empty")
	case len(text) > s.opts.MaxTextBytes:
		return chat.Errorf(chat.CodeTooLarge, "text is longer than %d bytes", s.opts.MaxTextBytes)
	case !utf8.ValidString(text):
		return chat.Errorf(chat.CodeInvalidArgument, "text must be valid UTF-8")
	}
	return nil
}
