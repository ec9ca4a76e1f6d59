package chattest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/natter-chat/natter/internal/chat"
)

func userTests() []storeMethod {
	return []storeMethod{
		{"CreateUser", []storeCase{
			{"stores the user and its password hash", func(t *testing.T, s chat.Store, ids *IDs) {
				u := chat.User{ID: chat.UserID(ids.NextID()), Username: "alice", CreatedAt: At(time.Hour)}
				mustNot(t, "CreateUser", s.CreateUser(t.Context(), u, "hash-a"))
				got, err := s.GetUser(t.Context(), u.ID)
				mustNot(t, "GetUser", err)
				wantEqual(t, "GetUser", u, got)
				got, hash, err := s.GetUserByUsername(t.Context(), "alice")
				mustNot(t, "GetUserByUsername", err)
				wantEqual(t, "GetUserByUsername", u, got)
				wantEqual(t, "password hash", "hash-a", hash)
			}},
			{"taken username is rejected", func(t *testing.T, s chat.Store, ids *IDs) {
				first := MustCreateUser(t, s, ids, "alice")
				second := chat.User{ID: chat.UserID(ids.NextID()), Username: "alice", CreatedAt: At(time.Hour)}
				wantCode(t, s.CreateUser(t.Context(), second, "other"), chat.CodeUsernameTaken)
				_, err := s.GetUser(t.Context(), second.ID)
				wantCode(t, err, chat.CodeNotFound)
				got, hash, err := s.GetUserByUsername(t.Context(), "alice")
				mustNot(t, "GetUserByUsername", err)
				wantEqual(t, "user", first, got)
				wantEqual(t, "password hash", "hash:alice", hash)
			}},
		}},
		{"GetUser", []storeCase{
			{"unknown id is not found", func(t *testing.T, s chat.Store, ids *IDs) {
				MustCreateUser(t, s, ids, "alice")
				_, err := s.GetUser(t.Context(), chat.UserID(ids.NextID()))
				wantCode(t, err, chat.CodeNotFound)
			}},
		}},
		{"GetUserByUsername", []storeCase{
			{"unknown username is not found", func(t *testing.T, s chat.Store, ids *IDs) {
				MustCreateUser(t, s, ids, "alice")
				_, _, err := s.GetUserByUsername(t.Context(), "bob")
				wantCode(t, err, chat.CodeNotFound)
			}},
		}},
		{"ListUsers", []storeCase{
			{"returns the known users and skips unknown ids", func(t *testing.T, s chat.Store, ids *IDs) {
				alice := MustCreateUser(t, s, ids, "alice")
				MustCreateUser(t, s, ids, "bob")
				carol := MustCreateUser(t, s, ids, "carol")
				got, err := s.ListUsers(t.Context(), []chat.UserID{carol.ID, chat.UserID(ids.NextID()), alice.ID})
				mustNot(t, "ListUsers", err)
				wantEqual(t, "ListUsers", []chat.User{alice, carol}, got,
					cmpopts.SortSlices(func(a, b chat.User) bool { return a.ID < b.ID }))
			}},
			{"no ids gives no users", func(t *testing.T, s chat.Store, ids *IDs) {
				MustCreateUser(t, s, ids, "alice")
				got, err := s.ListUsers(t.Context(), nil)
				mustNot(t, "ListUsers", err)
				if len(got) != 0 {
					t.Fatalf("ListUsers(nil) = %v, want none", got)
				}
			}},
		}},
	}
}

// mustCreateSession stores a session of user created at created, expiring
// ttl later, whose refresh token hashes to hash.
func mustCreateSession(t testing.TB, s chat.Store, ids *IDs, user chat.UserID, hash string, created time.Time, ttl time.Duration) chat.Session {
	t.Helper()
	sess := chat.Session{
		ID: chat.SessionID(ids.NextID()), User: user, Device: "laptop",
		CreatedAt: created, LastUsedAt: created, ExpiresAt: created.Add(ttl),
	}
	mustNot(t, "CreateSession", s.CreateSession(t.Context(), sess, hash))
	return sess
}

func sessionTests() []storeMethod {
	return []storeMethod{
		{"CreateSession", []storeCase{
			{"stores a live session", func(t *testing.T, s chat.Store, ids *IDs) {
				alice := MustCreateUser(t, s, ids, "alice")
				want := mustCreateSession(t, s, ids, alice.ID, "h1", At(0), time.Hour)
				got, err := s.GetSession(t.Context(), want.ID)
				mustNot(t, "GetSession", err)
				wantEqual(t, "GetSession", want, got)
				if !got.Live(At(time.Minute)) {
					t.Errorf("session %+v is not live", got)
				}
			}},
		}},
		{"GetSession", []storeCase{
			{"unknown id is not found", func(t *testing.T, s chat.Store, ids *IDs) {
				_, err := s.GetSession(t.Context(), chat.SessionID(ids.NextID()))
				wantCode(t, err, chat.CodeNotFound)
			}},
		}},
		{"RotateRefreshToken", rotateTests()},
		{"ListSessions", []storeCase{
			{"lists the user's live sessions newest first", func(t *testing.T, s chat.Store, ids *IDs) {
				alice := MustCreateUser(t, s, ids, "alice")
				bob := MustCreateUser(t, s, ids, "bob")
				first := mustCreateSession(t, s, ids, alice.ID, "h1", At(0), 24*time.Hour)
				second := mustCreateSession(t, s, ids, alice.ID, "h2", At(time.Minute), 24*time.Hour)
				mustCreateSession(t, s, ids, alice.ID, "h3", At(2*time.Minute), time.Minute) // expired by At(5m)
				revoked := mustCreateSession(t, s, ids, alice.ID, "h4", At(3*time.Minute), 24*time.Hour)
				mustNot(t, "RevokeSession", s.RevokeSession(t.Context(), alice.ID, revoked.ID, At(4*time.Minute)))
				mustCreateSession(t, s, ids, bob.ID, "h5", At(4*time.Minute), 24*time.Hour)

				got, err := s.ListSessions(t.Context(), alice.ID, At(5*time.Minute))
				mustNot(t, "ListSessions", err)
				wantEqual(t, "ListSessions", []chat.Session{second, first}, got)
			}},
			{"user without sessions gets none", func(t *testing.T, s chat.Store, ids *IDs) {
				alice := MustCreateUser(t, s, ids, "alice")
				got, err := s.ListSessions(t.Context(), alice.ID, At(0))
				mustNot(t, "ListSessions", err)
				if len(got) != 0 {
					t.Fatalf("ListSessions = %v, want none", got)
				}
			}},
		}},
		{"RevokeSession", revokeTests()},
	}
}

func rotateTests() []storeCase {
	return []storeCase{
		{"returns the session with the new expiry and the new token works", func(t *testing.T, s chat.Store, ids *IDs) {
			alice := MustCreateUser(t, s, ids, "alice")
			want := mustCreateSession(t, s, ids, alice.ID, "h1", At(0), time.Hour)
			want.LastUsedAt, want.ExpiresAt = At(10*time.Minute), At(130*time.Minute)

			got, err := s.RotateRefreshToken(t.Context(), "h1", "h2", At(10*time.Minute), 2*time.Hour)
			mustNot(t, "RotateRefreshToken", err)
			wantEqual(t, "rotated session", want, got)
			stored, err := s.GetSession(t.Context(), want.ID)
			mustNot(t, "GetSession", err)
			wantEqual(t, "stored session", want, stored)

			_, err = s.RotateRefreshToken(t.Context(), "h2", "h3", At(20*time.Minute), 2*time.Hour)
			mustNot(t, "RotateRefreshToken with the new token", err)
		}},
		{"reused token revokes the session", func(t *testing.T, s chat.Store, ids *IDs) {
			alice := MustCreateUser(t, s, ids, "alice")
			sess := mustCreateSession(t, s, ids, alice.ID, "h1", At(0), time.Hour)
			_, err := s.RotateRefreshToken(t.Context(), "h1", "h2", At(time.Minute), time.Hour)
			mustNot(t, "RotateRefreshToken", err)

			revoked, err := s.RotateRefreshToken(t.Context(), "h1", "stolen", At(2*time.Minute), time.Hour)
			wantCode(t, err, chat.CodeRefreshReused)
			wantEqual(t, "revoked session named with the error", [2]int64{int64(sess.ID), int64(alice.ID)}, [2]int64{int64(revoked.ID), int64(revoked.User)})
			got, err := s.GetSession(t.Context(), sess.ID)
			mustNot(t, "GetSession", err)
			wantEqual(t, "RevokedAt", At(2*time.Minute), got.RevokedAt)
			_, err = s.RotateRefreshToken(t.Context(), "h2", "h3", At(3*time.Minute), time.Hour)
			wantCode(t, err, chat.CodeUnauthenticated)
			_, err = s.RotateRefreshToken(t.Context(), "stolen", "h4", At(3*time.Minute), time.Hour)
			wantCode(t, err, chat.CodeUnauthenticated)
		}},
		{"unknown token is unauthenticated", func(t *testing.T, s chat.Store, ids *IDs) {
			alice := MustCreateUser(t, s, ids, "alice")
			mustCreateSession(t, s, ids, alice.ID, "h1", At(0), time.Hour)
			_, err := s.RotateRefreshToken(t.Context(), "nope", "h2", At(time.Minute), time.Hour)
			wantCode(t, err, chat.CodeUnauthenticated)
		}},
		{"expired session is unauthenticated", func(t *testing.T, s chat.Store, ids *IDs) {
			alice := MustCreateUser(t, s, ids, "alice")
			mustCreateSession(t, s, ids, alice.ID, "h1", At(0), time.Hour)
			_, err := s.RotateRefreshToken(t.Context(), "h1", "h2", At(time.Hour), time.Hour)
			wantCode(t, err, chat.CodeUnauthenticated)
		}},
		{"revoked session is unauthenticated", func(t *testing.T, s chat.Store, ids *IDs) {
			alice := MustCreateUser(t, s, ids, "alice")
			sess := mustCreateSession(t, s, ids, alice.ID, "h1", At(0), time.Hour)
			mustNot(t, "RevokeSession", s.RevokeSession(t.Context(), alice.ID, sess.ID, At(time.Minute)))
			_, err := s.RotateRefreshToken(t.Context(), "h1", "h2", At(2*time.Minute), time.Hour)
			wantCode(t, err, chat.CodeUnauthenticated)
		}},
	}
}

func revokeTests() []storeCase {
	return []storeCase{
		{"revokes the session", func(t *testing.T, s chat.Store, ids *IDs) {
			alice := MustCreateUser(t, s, ids, "alice")
			sess := mustCreateSession(t, s, ids, alice.ID, "h1", At(0), time.Hour)
			mustNot(t, "RevokeSession", s.RevokeSession(t.Context(), alice.ID, sess.ID, At(time.Minute)))
			got, err := s.GetSession(t.Context(), sess.ID)
			mustNot(t, "GetSession", err)
			wantEqual(t, "RevokedAt", At(time.Minute), got.RevokedAt)
			if got.Live(At(2 * time.Minute)) {
				t.Errorf("revoked session %+v is live", got)
			}
		}},
		{"revoking twice is not an error", func(t *testing.T, s chat.Store, ids *IDs) {
			alice := MustCreateUser(t, s, ids, "alice")
			sess := mustCreateSession(t, s, ids, alice.ID, "h1", At(0), time.Hour)
			mustNot(t, "RevokeSession", s.RevokeSession(t.Context(), alice.ID, sess.ID, At(time.Minute)))
			mustNot(t, "RevokeSession again", s.RevokeSession(t.Context(), alice.ID, sess.ID, At(2*time.Minute)))
			got, err := s.GetSession(t.Context(), sess.ID)
			mustNot(t, "GetSession", err)
			if got.RevokedAt.IsZero() {
				t.Errorf("session %+v is not revoked", got)
			}
		}},
		{"another user's session is not found", func(t *testing.T, s chat.Store, ids *IDs) {
			alice := MustCreateUser(t, s, ids, "alice")
			bob := MustCreateUser(t, s, ids, "bob")
			sess := mustCreateSession(t, s, ids, alice.ID, "h1", At(0), time.Hour)
			wantCode(t, s.RevokeSession(t.Context(), bob.ID, sess.ID, At(time.Minute)), chat.CodeNotFound)
			got, err := s.GetSession(t.Context(), sess.ID)
			mustNot(t, "GetSession", err)
			wantEqual(t, "untouched session", sess, got)
		}},
		{"unknown session is not found", func(t *testing.T, s chat.Store, ids *IDs) {
			alice := MustCreateUser(t, s, ids, "alice")
			wantCode(t, s.RevokeSession(t.Context(), alice.ID, chat.SessionID(ids.NextID()), At(0)), chat.CodeNotFound)
		}},
	}
}
