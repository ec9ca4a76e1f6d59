// Package push notifies users who have no active device: it turns new
// messages into notifications and delivers them through Web Push (VAPID,
// RFC 8030/8291), APNs and FCM in background workers, never on the send
// path.
//
// Invariants: Dispatcher.Notify never blocks (a full queue drops the
// notification and counts it); a member is notified only when their
// presence is offline or away, their level in the conversation allows it
// and their session is live; at most one notification per user and
// conversation leaves per collapse interval, and messages folded during
// the interval are summed into the next one (a trailing summary when no
// new message comes); deliveries that fail for a transient reason are
// retried with exponential backoff and jitter a bounded number of times;
// subscriptions the push service reports gone are deleted. A queued
// delivery holds ids only (subscription, user, conversation, message,
// count, hide_text), never keys, tokens, endpoints, names or text: the
// worker reads those from the store when it delivers, and delivers
// nothing when the subscription is gone, the user left or muted the
// conversation, or the one message it is about was deleted. Errors that
// reach logs and dead letters never carry an endpoint. Notifications are
// best effort: messages a node has not planned yet (its in-memory queue)
// are lost when it stops; deliveries already queued survive it when the
// queue is durable (JetStream in cluster mode) and are lost with an
// in-process queue (embedded mode).
package push
