package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/natter-chat/natter/client"
)

// report is the outcome of one scenario.
type report struct {
	scenario      string
	acknowledged  int // distinct client_ids with an ack
	stored        int // messages in the histories
	delivered     int // (client, message) pairs a member's client applied
	lost          int // acknowledged but not stored, or stored but not applied by a member's client
	duplicated    int // a client_id stored twice, or a message applied twice outside a resume
	reordered     int // a history that is not 1..N, a client holding another message at a seq, applying out of order
	liveReordered int // live messages below one already received live on the same connection (a failure)
	overlap       int // copies inside a resume window or from a catch-up (documented, harmless)
	gapFilled     int // messages fetched after a live gap
	sendErrors    int // failed send attempts (all retried until acked)
	ackMismatch   int // an ack whose (id, seq, conv) is not what is stored for its client_id
	unackedStored int // stored messages whose sender never saw an ack (none expected: every send is retried)
	sessions      int // connections opened by all clients
	reconnects    int // reconnect frames received
	disconnects   int // connections ended by a server or the network
	gaveUp        int // clients that could not reconnect
	problems      []string
}

// line is the one-line summary of the report.
func (r *report) line() string {
	return fmt.Sprintf("scenario=%s acknowledged=%d stored=%d delivered=%d lost=%d duplicated=%d reordered=%d overlap=%d gap_filled=%d send_errors=%d live_reordered=%d ack_mismatch=%d unacked_stored=%d sessions=%d disconnects=%d reconnect_frames=%d gave_up=%d",
		r.scenario, r.acknowledged, r.stored, r.delivered, r.lost, r.duplicated, r.reordered, r.overlap, r.gapFilled, r.sendErrors,
		r.liveReordered, r.ackMismatch, r.unackedStored, r.sessions, r.disconnects, r.reconnects, r.gaveUp)
}

// failed reports whether the scenario broke a guarantee.
func (r *report) failed() bool {
	return r.lost+r.duplicated+r.reordered+r.ackMismatch+r.gaveUp > 0
}

// problem notes one finding, with the client log lines about m: its
// sends (by client_id) and its receipts (by id).
func (r *report) problem(w *workload, m *client.Message, format string, args ...any) {
	if len(r.problems) >= 40 {
		return
	}
	msg := fmt.Sprintf(format, args...)
	if m != nil {
		for _, key := range []string{"cid=" + m.ClientID + " ", "id=" + m.ID + " "} {
			for _, u := range w.users {
				for _, l := range u.linesMatching(key, 6) {
					msg += "\n    " + l
				}
			}
		}
	}
	r.problems = append(r.problems, msg)
}

// readHistory pages a conversation's history forward from seq 0 through
// REST (HAProxy), as member u.
func readHistory(ctx context.Context, u *user, conv string) ([]client.Message, error) {
	var all []client.Message
	after := int64(0)
	for range 1000 {
		page, err := u.cl.History(ctx, conv, client.HistoryQuery{After: after, Forward: true, Limit: 500})
		if err != nil {
			return all, err
		}
		all = append(all, page.Messages...)
		if !page.HasMore {
			return all, nil
		}
		if len(page.Messages) == 0 {
			return all, fmt.Errorf("history of %s: has_more after seq %d but an empty page", conv, after)
		}
		after = page.Messages[len(page.Messages)-1].Seq
	}
	return all, fmt.Errorf("history of %s: more than 1000 pages", conv)
}

// check compares what the clients were told and applied with what the
// store holds.
func check(ctx context.Context, scenario string, w *workload) (*report, error) {
	r := &report{scenario: scenario}
	acks := make(map[string]ackRecord)
	sentBy := make(map[string]*user) // client_id → sender
	for _, u := range w.users {
		u.mu.Lock()
		for cid, a := range u.acks {
			acks[cid] = a
			sentBy[cid] = u
		}
		s := u.stats
		r.duplicated += s.duplicated
		r.reordered += s.conflicts
		r.liveReordered += s.liveReordered
		r.overlap += s.overlap
		r.gapFilled += s.gapFilled
		r.sendErrors += s.sendErrors
		r.ackMismatch += s.ackConflicts
		r.sessions += s.sessions
		r.reconnects += s.reconnects
		r.disconnects += s.disconnects
		if u.fatal != nil {
			r.gaveUp++
			r.problems = append(r.problems, fmt.Sprintf("%s gave up: %v", u.name, u.fatal))
		}
		u.mu.Unlock()
		if s.duplicated > 0 {
			r.problem(w, nil, "%s applied %d live copies of messages it held:\n    %s", u.name, s.duplicated, strings.Join(u.linesMatching("DUPLICATE", 6), "\n    "))
		}
		if s.conflicts > 0 {
			r.problem(w, nil, "%s got another message at a seq it held %d times:\n    %s", u.name, s.conflicts, strings.Join(append(u.linesMatching("CONFLICT", 6), u.linesMatching("FOREIGN", 3)...), "\n    "))
		}
	}
	r.acknowledged = len(acks)

	storedCID := make(map[string]client.Message) // client_id → stored message
	for _, c := range w.convs {
		owner := w.users[c.members[0]]
		msgs, err := readHistory(ctx, owner, c.id)
		if err != nil {
			return r, fmt.Errorf("read history of %s: %w", c.title, err)
		}
		r.stored += len(msgs)
		for i, m := range msgs {
			if m.Seq != int64(i+1) {
				r.reordered++
				r.problem(w, &m, "%s: history position %d holds seq %d (client_id %s): not gap-free 1..N", c.title, i+1, m.Seq, m.ClientID)
			}
			if first, ok := storedCID[m.ClientID]; ok {
				r.duplicated++
				r.problem(w, &m, "client_id %s stored twice: seq %d (id %s) and seq %d (id %s)", m.ClientID, first.Seq, first.ID, m.Seq, m.ID)
				continue
			}
			storedCID[m.ClientID] = m
			if _, ok := acks[m.ClientID]; !ok {
				r.unackedStored++
				r.problem(w, &m, "%s: seq %d (client_id %s) is stored but its sender never saw an ack", c.title, m.Seq, m.ClientID)
			}
		}
		r.checkMembers(w, c, msgs)
	}
	for cid, a := range acks {
		m, ok := storedCID[cid]
		switch {
		case !ok:
			r.lost++
			r.problem(w, &client.Message{ClientID: cid, ID: a.id}, "acknowledged %s (conv %s id %s seq %d) is not stored", cid, a.conv, a.id, a.seq)
		case m.ID != a.id || m.Seq != a.seq || m.Conv != a.conv:
			r.ackMismatch++
			r.problem(w, &m, "%s was acked as id %s seq %d in %s but is stored as id %s seq %d in %s", cid, a.id, a.seq, a.conv, m.ID, m.Seq, m.Conv)
		}
	}
	return r, nil
}

// checkMembers checks that every member's client applied every stored
// message of c, the same message at each seq, in increasing seq order.
func (r *report) checkMembers(w *workload, c conversation, msgs []client.Message) {
	for _, mi := range c.members {
		u := w.users[mi]
		u.mu.Lock()
		v := u.views[c.id]
		applied := make(map[int64]received, len(v.applied))
		for k, x := range v.applied {
			applied[k] = x
		}
		order := slices.Clone(v.order)
		held := len(v.held)
		last := v.last
		u.mu.Unlock()
		missing := 0
		for _, m := range msgs {
			a, ok := applied[m.Seq]
			switch {
			case !ok:
				r.lost++
				missing++
				if missing <= 3 {
					r.problem(w, &m, "%s never applied %s seq %d (client_id %s, id %s); it holds 1..%d and %d ahead", u.name, c.title, m.Seq, m.ClientID, m.ID, last, held)
				}
			case a.id != m.ID:
				r.reordered++
				r.problem(w, &m, "%s holds id %s at %s seq %d, the store holds id %s (client_id %s)", u.name, a.id, c.title, m.Seq, m.ID, m.ClientID)
			default:
				r.delivered++
			}
		}
		if extra := int64(len(applied)) - int64(len(msgs)); extra > 0 {
			r.duplicated += int(extra)
			r.problem(w, nil, "%s applied %d messages of %s beyond the %d stored", u.name, extra, c.title, len(msgs))
		}
		for i := 1; i < len(order); i++ {
			if order[i] <= order[i-1] {
				r.reordered++
				r.problem(w, nil, "%s applied %s seq %d after seq %d", u.name, c.title, order[i], order[i-1])
			}
		}
		if missing > 3 {
			r.problems = append(r.problems, fmt.Sprintf("%s never applied %d messages of %s in all", u.name, missing, c.title))
		}
	}
}

// summary joins the problems for a failure message.
func (r *report) summary() string {
	if len(r.problems) == 0 {
		return "(no details)"
	}
	return strings.Join(r.problems, "\n")
}
