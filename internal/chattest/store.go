package chattest

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/natter-chat/natter/internal/chat"
)

// TestStore runs the chat.Store conformance suite: one subtest per
// behaviour, grouped by method ("CreateUser/taken username is rejected").
// open must return a fresh, empty store and close it when t ends (with
// t.Cleanup); it is called once per subtest, from parallel subtests.
//
// Stores must keep times to the millisecond; the suite uses only
// whole-millisecond UTC times and compares them with time.Time.Equal.
func TestStore(t *testing.T, open func(t testing.TB) chat.Store) {
	ping := storeMethod{"Ping", []storeCase{{"fresh store is reachable", func(t *testing.T, s chat.Store, _ *IDs) {
		if err := s.Ping(t.Context()); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	}}}}
	groups := [][]storeMethod{userTests(), sessionTests(), conversationTests(), memberTests(), messageTests(),
		actionTests(), changeTests(), {searchTests(), ping}}
	for _, group := range groups {
		for _, m := range group {
			t.Run(m.method, func(t *testing.T) {
				t.Parallel()
				for _, c := range m.cases {
					t.Run(c.name, func(t *testing.T) {
						t.Parallel()
						c.test(t, open(t), NewIDs())
					})
				}
			})
		}
	}
}

// storeMethod is the suite's cases for one Store method.
type storeMethod struct {
	method string
	cases  []storeCase
}

// storeCase is one behaviour. test gets a fresh store and id counter.
type storeCase struct {
	name string
	test func(t *testing.T, s chat.Store, ids *IDs)
}

// wantCode fails t unless err carries code.
func wantCode(t testing.TB, err error, code chat.Code) {
	t.Helper()
	if got := chat.ErrorCode(err); got != code {
		t.Fatalf("got error %v (code %q), want code %q", err, got, code)
	}
}

// mustNot fails t if err is not nil; what names the call.
func mustNot(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// wantEqual fails t if got differs from want; what names the value. A nil
// slice equals an empty one: stores may return either for "none".
func wantEqual(t testing.TB, what string, want, got any, opts ...cmp.Option) {
	t.Helper()
	if diff := cmp.Diff(want, got, append(opts, cmpopts.EquateEmpty())...); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", what, diff)
	}
}

// ignorePos makes a comparison ignore change positions, for cases about
// something else; positions have cases of their own (store_changes.go).
func ignorePos() cmp.Option {
	return cmp.Options{
		cmpopts.IgnoreFields(chat.Message{}, "Pos"),
		cmpopts.IgnoreFields(chat.Member{}, "Pos"),
		cmpopts.IgnoreFields(chat.Conversation{}, "Pos"),
	}
}
