package chattest

import (
	"testing"

	"github.com/natter-chat/natter/internal/chat"
)

func searchTests() storeMethod {
	names := func(us []chat.User) []string {
		out := []string{}
		for _, u := range us {
			out = append(out, u.Username)
		}
		return out
	}
	return storeMethod{"SearchUsers", []storeCase{
		{"prefix match in username order, paged", func(t *testing.T, s chat.Store, ids *IDs) {
			for _, n := range []string{"anna", "annabel", "ann", "bob", "annie", "xann"} {
				MustCreateUser(t, s, ids, n)
			}
			page, err := s.SearchUsers(t.Context(), "ann", "", 2)
			mustNot(t, "SearchUsers", err)
			wantEqual(t, "first page", []string{"ann", "anna"}, names(page))
			page, err = s.SearchUsers(t.Context(), "ann", "anna", 10)
			mustNot(t, "SearchUsers", err)
			wantEqual(t, "second page", []string{"annabel", "annie"}, names(page))
		}},
		{"wildcards in the prefix are literal", func(t *testing.T, s chat.Store, ids *IDs) {
			MustCreateUser(t, s, ids, "a_b")
			MustCreateUser(t, s, ids, "axb")
			page, err := s.SearchUsers(t.Context(), "a_", "", 10)
			mustNot(t, "SearchUsers", err)
			wantEqual(t, "matches", []string{"a_b"}, names(page))
			page, err = s.SearchUsers(t.Context(), "%", "", 10)
			mustNot(t, "SearchUsers", err)
			wantEqual(t, "matches for %", []string{}, names(page))
		}},
	}}
}
