package protocol

import (
	"time"

	"github.com/natter-chat/natter/internal/chat"
)

// Profile is a user as others see it: the account (the fields of User)
// and its profile. A deleted account has "deleted":true, an empty
// username, null display_name and avatar, and an empty status_text.
type Profile struct {
	ID          string     `json:"id"`
	Username    string     `json:"username"`
	CreatedAt   time.Time  `json:"created_at"`
	DisplayName *string    `json:"display_name"` // null when not set
	StatusText  string     `json:"status_text"`
	Avatar      *string    `json:"avatar"` // the id of the avatar (GET /v1/users/{id}/avatar); null for none
	UpdatedAt   *time.Time `json:"updated_at,omitempty"`
	Deleted     bool       `json:"deleted,omitempty"`
}

// FromProfile converts a domain profile.
func FromProfile(p chat.Profile) Profile {
	out := Profile{ID: p.User.String(), Username: p.Username, CreatedAt: p.CreatedAt.UTC(), StatusText: p.StatusText,
		UpdatedAt: optionalTime(p.UpdatedAt), Deleted: p.Deleted()}
	if p.DisplayName != "" {
		out.DisplayName = &p.DisplayName
	}
	if p.Avatar != "" {
		out.Avatar = &p.Avatar
	}
	return out
}

func optionalTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// ProfileResponse answers GET /v1/users/{id} and PATCH /v1/users/me/profile.
type ProfileResponse struct {
	User Profile `json:"user"`
}

// ProfilesResponse answers GET /v1/users?q=: a page of users; Next, when
// set, is the after= value of the next page. It is a superset of
// UsersResponse.
type ProfilesResponse struct {
	Users []Profile `json:"users"`
	Next  string    `json:"next,omitempty"`
}

// ProfileRequest is the body of PATCH /v1/users/me/profile: absent (or
// null) fields stay as they are; "" clears a field.
type ProfileRequest struct {
	DisplayName *string `json:"display_name,omitempty"`
	StatusText  *string `json:"status_text,omitempty"`
	Avatar      *string `json:"avatar,omitempty"`
}

// Related is one contact or blocked user: their profile and since when.
type Related struct {
	User  Profile   `json:"user"`
	Since time.Time `json:"since"`
}

// FromRelated converts contacts or blocks.
func FromRelated(rs []chat.Related) []Related {
	out := make([]Related, len(rs))
	for i, r := range rs {
		out[i] = Related{User: FromProfile(r.Profile), Since: r.Since.UTC()}
	}
	return out
}

// ContactsResponse answers GET /v1/contacts.
type ContactsResponse struct {
	Contacts []Related `json:"contacts"`
}

// BlocksResponse answers GET /v1/blocks.
type BlocksResponse struct {
	Blocks []Related `json:"blocks"`
}

// DeleteAccountRequest is the body of DELETE /v1/users/me.
type DeleteAccountRequest struct {
	Password string `json:"password"`
}

// ExportConversation is one entry of conversations.json in a data export:
// a conversation the user is a member of and their membership.
type ExportConversation struct {
	ID        string    `json:"id"`
	Kind      string    `json:"kind"`
	Title     string    `json:"title,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	Role      string    `json:"role"`
	JoinedAt  time.Time `json:"joined_at"`
	ReadSeq   int64     `json:"read_seq"`
}

// ExportManifest is manifest.json in a data export.
type ExportManifest struct {
	Format      string    `json:"format"` // "natter-export-1"
	User        string    `json:"user"`
	GeneratedAt time.Time `json:"generated_at"`
	Contents    string    `json:"contents"`
	// Files lists every attachment and avatar file in the archive.
	Files []ExportFile `json:"files"`
}
