package chat

import (
	"context"
	"strings"
	"time"
	"unicode"
)

// Profile is what a user shows others: a display name, a status line and
// an avatar. A deleted account keeps its id (old messages name it as
// sender) but loses everything else: Username, DisplayName, StatusText and
// Avatar are empty and DeletedAt is set.
type Profile struct {
	User        UserID
	Username    string // "" once the account is deleted
	DisplayName string // "" when not set
	StatusText  string
	// Avatar is the id of an uploaded image (an attachment), opaque to
	// the store; "" for none.
	Avatar    string
	CreatedAt time.Time
	UpdatedAt time.Time // the profile's last change; zero if never changed
	DeletedAt time.Time // zero unless the account was deleted
}

// Deleted reports whether the account was deleted.
func (p Profile) Deleted() bool { return !p.DeletedAt.IsZero() }

// ProfileChange is a partial update of a profile: nil fields stay as they
// are; a pointer to "" clears the field.
type ProfileChange struct {
	DisplayName *string
	StatusText  *string
	Avatar      *string
}

// Relation is how one user has marked another.
type Relation string

const (
	RelationContact Relation = "contact" // in the user's address book
	RelationBlock   Relation = "block"   // may not start a direct conversation with the user nor send in one
)

// Related is one entry of a user's contacts or blocks: the other user's
// profile and when they were added.
type Related struct {
	Profile Profile
	Since   time.Time
}

// DirectPeer is what the send path needs to know about a conversation's
// other member when the conversation is direct.
type DirectPeer struct {
	Direct  bool   // false for a group (the other fields are then zero)
	Peer    UserID // the other member; 0 when they left (their account was deleted)
	Blocked bool   // Peer has blocked the sender asked about
}

// Mark is one user's contact or block of another, as seen from the
// other side: who made it, and which kind it is.
type Mark struct {
	Owner UserID
	Rel   Relation
}

// DeletedAccount is what closing an account ended (see
// PeopleStore.DeleteAccount).
type DeletedAccount struct {
	Revoked []SessionID // the sessions that were still live
	// Unmarked lists the other users' contacts and blocks of the account
	// that were removed, in any order; the account's own marks are not
	// listed, since nobody is left to tell.
	Unmarked []Mark
}

// SentCursor orders a user's sent messages by conversation, then seq.
type SentCursor struct {
	Conv ConversationID
	Seq  int64
}

// PeopleStore keeps profiles, contacts, blocks and account deletion.
// Implementations: sqlite and postgres (the same types as their Store);
// every implementation must pass chattest.TestPeopleStore. Like Store, it
// checks no permissions and returns CodeNotFound for absent things and
// CodeUnavailable for backend failures.
type PeopleStore interface {
	// GetProfile returns the profile of user id (deleted accounts
	// included, with DeletedAt set). CodeNotFound for an unknown id.
	GetProfile(ctx context.Context, id UserID) (Profile, error)
	// ListProfiles returns the profiles among ids that exist (deleted
	// ones included), in any order.
	ListProfiles(ctx context.Context, ids []UserID) ([]Profile, error)
	// UpdateProfile applies change to a live account's profile, sets
	// UpdatedAt to at and returns the profile. CodeNotFound for an unknown
	// or deleted account, and for a non-empty change.Avatar that is not
	// the account's stored avatar (checked in the same transaction, so no
	// concurrent avatar change can make the profile name a deleted one).
	UpdateProfile(ctx context.Context, id UserID, change ProfileChange, at time.Time) (Profile, error)
	// SearchProfiles returns up to limit live accounts whose username or
	// folded display name (see FoldName) starts with prefix (already
	// folded), ordered by username, with usernames after after ("" for the
	// first page). Wildcards in prefix are literal.
	SearchProfiles(ctx context.Context, prefix, after string, limit int) ([]Profile, error)

	// SetRelation marks (on) or unmarks other for owner and reports
	// whether anything changed. Marking twice or unmarking an absent mark
	// changes nothing. CodeNotFound when on and other is unknown or deleted.
	SetRelation(ctx context.Context, owner, other UserID, rel Relation, on bool, at time.Time) (changed bool, err error)
	// ListRelations returns owner's marks of kind rel, oldest first, up to
	// limit.
	ListRelations(ctx context.Context, owner UserID, rel Relation, limit int) ([]Related, error)
	// CountRelations counts owner's marks of kind rel.
	CountRelations(ctx context.Context, owner UserID, rel Relation) (int, error)
	// Blocked reports whether blocker has blocked user.
	Blocked(ctx context.Context, blocker, user UserID) (bool, error)
	// GetDirectPeer describes conv's other member as seen by sender, in
	// one read. CodeNotFound for an unknown conversation.
	GetDirectPeer(ctx context.Context, conv ConversationID, sender UserID) (DirectPeer, error)

	// ListSentMessages returns up to limit of sender's messages (in every
	// conversation, including ones sender left; tombstones excluded)
	// after the cursor, ordered by conversation then seq.
	ListSentMessages(ctx context.Context, sender UserID, after SentCursor, limit int) ([]Message, error)
	// TombstoneSent turns up to limit of sender's messages that are not
	// deleted yet into tombstones, as DeleteMessage does (text, mentions
	// and reactions erased, a new change position each, DeletedAt = at),
	// in one transaction, and returns them. An empty result means none is
	// left.
	TombstoneSent(ctx context.Context, sender UserID, at time.Time, limit int) ([]Message, error)
	// DeleteAccount closes user's account in one transaction: every
	// session is revoked, the profile is erased and DeletedAt set, the
	// username is freed, the password hash replaced by passwordHash (so
	// that no password matches), and every contact and block by or of
	// user is removed. It returns the revoked sessions and the other
	// users' marks of user that it removed. Memberships and messages are
	// left to the caller. Deleting a deleted account again changes
	// nothing and returns nothing. CodeNotFound for an unknown user.
	DeleteAccount(ctx context.Context, user UserID, passwordHash string, at time.Time) (DeletedAccount, error)
}

// DeletedUsername is the username a deleted account keeps in storage: it
// frees the real name for others and, holding a ':', is never a valid
// username, so nobody can register or log in with it.
func DeletedUsername(id UserID) string { return "deleted:" + id.String() }

// FoldName returns s in the form user search compares: trimmed, lower
// case, with the accents of Latin letters removed ("Élodie" → "elodie").
func FoldName(s string) string {
	s = strings.TrimSpace(s)
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		if unicode.Is(unicode.Mn, r) { // a combining mark: the accent of a decomposed letter
			continue
		}
		r = unicode.ToLower(r)
		if f, ok := foldLatin(r); ok {
			b.WriteString(f)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// latinFolds lists accented lower-case Latin letters followed by their
// base letters, in groups.
const latinFolds = "àáâãäåāăą:a çćĉċč:c ďđ:d èéêëēĕėęě:e ĝğġģ:g ĥħ:h ìíîïĩīĭįı:i ĵ:j ķ:k ĺļľŀł:l ñńņňŉ:n " +
	"òóôõöøōŏő:o ŕŗř:r śŝşšș:s ţťŧț:t ùúûüũūŭůűų:u ŵ:w ýÿŷ:y źżž:z"

// foldLatin maps an accented lower-case Latin letter to its base letter,
// and the ligatures ß, æ, œ, þ to letter pairs.
func foldLatin(r rune) (string, bool) {
	if r < 0xC0 || r > 0x24F {
		return "", false
	}
	switch r {
	case 'ß':
		return "ss", true
	case 'æ':
		return "ae", true
	case 'œ':
		return "oe", true
	case 'þ':
		return "th", true
	}
	for group := range strings.SplitSeq(latinFolds, " ") {
		letters, base, _ := strings.Cut(group, ":")
		if strings.ContainsRune(letters, r) {
			return base, true
		}
	}
	return "", false
}

// EventBlocksChanged: Users[0] blocked or unblocked Users[1]; nodes drop
// their cached block checks, and no connection hears of it. Nodes of the
// release before settings events knew only this: a block change still
// publishes it next to the settings event, so that in a cluster upgraded
// node by node every node enforces a block at once. Remove it a release
// later.
const EventBlocksChanged EventKind = "blocks_changed"
