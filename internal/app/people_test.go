package app_test

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/natter-chat/natter/client"
)

func strp(s string) *string { return &s }

// wantErrCode fails t unless err is a client error with code and status.
func wantErrCode(t testing.TB, what string, err error, code string, status int) {
	t.Helper()
	var e *client.Error
	if !errors.As(err, &e) || e.Code != code || e.Status != status {
		t.Fatalf("%s: got %v, want %s (%d)", what, err, code, status)
	}
}

func TestPeople_ProfileUpdateIsVisibleToOthers(t *testing.T) {
	n := startNode(t, "")
	alice, aliceID := n.user(t, "alice")
	bob, _ := n.user(t, "bob")

	got, err := bob.Profile(ctxT(t), aliceID)
	if err != nil {
		t.Fatal(err)
	}
	if got.DisplayName != nil || got.Avatar != nil || got.StatusText != "" || got.Deleted {
		t.Errorf("a fresh profile = %+v, want display_name and avatar null", got)
	}
	if _, err := alice.UpdateProfile(ctxT(t), client.ProfileRequest{DisplayName: strp("  Alice Liddell "), StatusText: strp("down the rabbit hole")}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.UpdateProfile(ctxT(t), client.ProfileRequest{StatusText: strp("back")}); err != nil {
		t.Fatal(err)
	}
	got, err = bob.Profile(ctxT(t), aliceID)
	if err != nil {
		t.Fatal(err)
	}
	if got.DisplayName == nil || *got.DisplayName != "Alice Liddell" || got.StatusText != "back" {
		t.Errorf("bob sees %+v; want display name \"Alice Liddell\" (trimmed), status \"back\"", got)
	}

	// Bad input is refused with a clear code and changes nothing.
	for name, req := range map[string]client.ProfileRequest{
		"display name of 65 characters": {DisplayName: strp(strings.Repeat("é", 65))},
		"control character":             {DisplayName: strp("Alice\x07")},
		"line break in the status":      {StatusText: strp("one\ntwo")},
		"status of 141 characters":      {StatusText: strp(strings.Repeat("x", 141))},
		"avatar that is not an id":      {Avatar: strp("../../etc/passwd")},
		"nothing to change":             {},
	} {
		_, err := alice.UpdateProfile(ctxT(t), req)
		wantErrCode(t, name, err, "invalid_argument", 400)
	}
	tok := alice.Tokens().AccessToken
	if status, body := rawRequest(t, http.MethodPatch, n.URL+"/v1/users/me/profile", tok, `{"nickname":"x"}`); status != 400 || !strings.Contains(body, "invalid_json") {
		t.Errorf("unknown field: %d %s", status, body)
	}

	// Trespass: there is no way to edit someone else's profile.
	status, _ := rawRequest(t, http.MethodPatch, n.URL+"/v1/users/"+aliceID+"/profile", bob.Tokens().AccessToken, `{"display_name":"pwned"}`)
	if status != http.StatusNotFound && status != http.StatusMethodNotAllowed {
		t.Errorf("PATCH of another user's profile: status %d", status)
	}
	got, err = bob.Profile(ctxT(t), aliceID)
	if err != nil {
		t.Fatal(err)
	}
	if *got.DisplayName != "Alice Liddell" {
		t.Errorf("after the refused updates alice's display name is %q", *got.DisplayName)
	}
	if _, err := alice.UpdateProfile(ctxT(t), client.ProfileRequest{DisplayName: strp(""), Avatar: strp("")}); err != nil {
		t.Fatal(err)
	}
	if got, _ := bob.Profile(ctxT(t), aliceID); got.DisplayName != nil || got.Avatar != nil {
		t.Errorf("after clearing: %+v", got)
	}
}

func TestPeople_SearchByDisplayNamePrefixIsPaged(t *testing.T) {
	n := startNode(t, "")
	searcher, _ := n.user(t, "searcher")
	names := map[string]string{} // id -> display name
	var ids []string
	for _, display := range []string{"Quincy Adams", "quinn", "Quília Souza", "Bob"} {
		c, id := n.user(t, "person")
		if _, err := c.UpdateProfile(ctxT(t), client.ProfileRequest{DisplayName: strp(display)}); err != nil {
			t.Fatal(err)
		}
		names[id] = display
		ids = append(ids, id)
	}
	var found []string
	after := ""
	for page := 0; ; page++ {
		res, err := searcher.SearchPeople(ctxT(t), "QUI", after, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Users) > 2 {
			t.Fatalf("page of %d users, limit 2", len(res.Users))
		}
		for _, u := range res.Users {
			found = append(found, u.ID)
		}
		if res.Next == "" || page > 3 {
			break
		}
		after = res.Next
	}
	want := ids[:3] // registered in this order, so also in username order
	if !slices.Equal(found, want) {
		got := make([]string, len(found))
		for i, id := range found {
			got[i] = names[id]
		}
		t.Errorf("search \"QUI\" found %q, want the three Qui… display names across pages", got)
	}
	// A username prefix still matches.
	res, err := searcher.SearchPeople(ctxT(t), "searcher", "", 10)
	if err != nil || len(res.Users) != 1 {
		t.Errorf("username search: %v, %+v", err, res.Users)
	}
	_, err = searcher.SearchPeople(ctxT(t), strings.Repeat("a", 65), "", 10)
	wantErrCode(t, "too long a query", err, "invalid_argument", 400)
}

func TestPeople_BlockStopsDirectConversationsAndSends(t *testing.T) {
	n := startNode(t, "")
	alice, aliceID := n.user(t, "alice")
	bob, bobID := n.user(t, "bob")
	carol, carolID := n.user(t, "carol")
	direct, err := alice.CreateDirect(ctxT(t), bobID)
	if err != nil {
		t.Fatal(err)
	}
	group, err := bob.CreateGroup(ctxT(t), "book club", []string{aliceID, carolID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Send(ctxT(t), direct.ID, "before", "hi bob"); err != nil {
		t.Fatal(err)
	}

	if err := bob.Block(ctxT(t), aliceID); err != nil {
		t.Fatal(err)
	}
	_, err = alice.Send(ctxT(t), direct.ID, "after-rest", "hello?")
	wantErrCode(t, "REST send in the direct conversation after the block", err, "blocked", 403)
	ws, _ := connect(t, alice)
	_, _, err = ws.Send(ctxT(t), direct.ID, "after-ws", "hello??")
	if client.ErrorCode(err) != "blocked" {
		t.Errorf("WebSocket send after the block: %v, want code blocked", err)
	}
	_, err = alice.CreateDirect(ctxT(t), bobID)
	wantErrCode(t, "direct conversation with the blocker", err, "blocked", 403)
	// In groups blocking changes nothing: clients hide the messages.
	if _, err := alice.Send(ctxT(t), group.ID, "group", "hi all"); err != nil {
		t.Errorf("send in a group after the block: %v", err)
	}
	// The blocker may still write; a user nobody blocked is unaffected.
	if _, err := bob.Send(ctxT(t), direct.ID, "bob-writes", "I blocked you"); err != nil {
		t.Errorf("the blocker's own send: %v", err)
	}
	carolBob, err := carol.CreateDirect(ctxT(t), bobID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := carol.Send(ctxT(t), carolBob.ID, "carol", "hi bob"); err != nil {
		t.Errorf("a user bob did not block: %v", err)
	}
	if _, err := carol.CreateDirect(ctxT(t), aliceID); err != nil {
		t.Errorf("alice was blocked by bob, not by carol: %v", err)
	}

	// Trespass: alice cannot see bob's blocks nor lift his block herself.
	if err := alice.Unblock(ctxT(t), aliceID); err != nil { // her own list: nothing to lift
		t.Fatal(err)
	}
	if err := alice.Unblock(ctxT(t), bobID); err != nil {
		t.Fatal(err)
	}
	if blocks, err := alice.Blocks(ctxT(t)); err != nil || len(blocks) != 0 {
		t.Errorf("alice's blocks = %+v, %v; want none", blocks, err)
	}
	_, err = alice.Send(ctxT(t), direct.ID, "still", "still blocked?")
	wantErrCode(t, "send after alice's own unblock calls", err, "blocked", 403)
	blocks, err := bob.Blocks(ctxT(t))
	if err != nil || len(blocks) != 1 || blocks[0].User.ID != aliceID {
		t.Fatalf("bob's blocks = %+v, %v; want alice", blocks, err)
	}

	if err := bob.Unblock(ctxT(t), aliceID); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Send(ctxT(t), direct.ID, "unblocked", "friends again"); err != nil {
		t.Errorf("send after the unblock: %v", err)
	}
	if _, err := alice.CreateDirect(ctxT(t), bobID); err != nil {
		t.Errorf("direct conversation after the unblock: %v", err)
	}

	wantErrCode(t, "blocking oneself", bob.Block(ctxT(t), bobID), "invalid_argument", 400)
	wantErrCode(t, "blocking nobody", bob.Block(ctxT(t), "999999"), "not_found", 404)
	status, body := rawRequest(t, http.MethodPut, n.URL+"/v1/blocks/abc", bob.Tokens().AccessToken, "")
	if status != 400 || !strings.Contains(body, "invalid_argument") {
		t.Errorf("PUT /v1/blocks/abc: %d %s", status, body)
	}
}

func TestPeople_Contacts(t *testing.T) {
	n := startNode(t, "")
	alice, _ := n.user(t, "alice")
	bob, bobID := n.user(t, "bob")
	_, carolID := n.user(t, "carol")
	for _, id := range []string{carolID, bobID, carolID} {
		if err := alice.AddContact(ctxT(t), id); err != nil {
			t.Fatal(err)
		}
	}
	list, err := alice.Contacts(ctxT(t))
	if err != nil || len(list) != 2 || list[0].User.ID != carolID || list[1].User.ID != bobID {
		t.Fatalf("contacts = %+v, %v; want carol then bob", list, err)
	}
	if other, err := bob.Contacts(ctxT(t)); err != nil || len(other) != 0 {
		t.Errorf("bob sees contacts %+v, %v; want only his own (none)", other, err)
	}
	if err := alice.RemoveContact(ctxT(t), carolID); err != nil {
		t.Fatal(err)
	}
	if list, _ := alice.Contacts(ctxT(t)); len(list) != 1 || list[0].User.ID != bobID {
		t.Errorf("after removing carol: %+v", list)
	}
	wantErrCode(t, "adding an unknown user", alice.AddContact(ctxT(t), "123456789"), "not_found", 404)
}

// readZip parses an export archive into file name -> contents.
func readZip(t testing.TB, b []byte) map[string][]byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("the export is not a ZIP archive: %v", err)
	}
	files := map[string][]byte{}
	for _, f := range zr.File {
		r, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		files[f.Name] = data
	}
	return files
}

func TestPeople_ExportHoldsTheUsersOwnDataOnly(t *testing.T) {
	n := startNode(t, "")
	alice, aliceID := n.user(t, "alice")
	bob, bobID := n.user(t, "bob")
	_, carolID := n.user(t, "carol")
	if _, err := alice.UpdateProfile(ctxT(t), client.ProfileRequest{DisplayName: strp("Alice Export")}); err != nil {
		t.Fatal(err)
	}
	group, err := alice.CreateGroup(ctxT(t), "plans", []string{bobID})
	if err != nil {
		t.Fatal(err)
	}
	direct, err := alice.CreateDirect(ctxT(t), bobID)
	if err != nil {
		t.Fatal(err)
	}
	elsewhere, err := bob.CreateDirect(ctxT(t), carolID)
	if err != nil {
		t.Fatal(err)
	}
	send := func(c *client.Client, conv, text string) client.Message {
		res, err := c.Send(ctxT(t), conv, text, text)
		if err != nil {
			t.Fatal(err)
		}
		return res.Message
	}
	send(alice, group.ID, "alice-in-group-1")
	send(bob, group.ID, "bob-in-group-SECRET")
	send(alice, group.ID, "alice-in-group-2")
	gone := send(alice, direct.ID, "alice-deleted-this")
	send(alice, direct.ID, "alice-in-direct")
	send(bob, elsewhere.ID, "bob-to-carol-SECRET")
	if _, err := alice.Delete(ctxT(t), direct.ID, gone.ID); err != nil {
		t.Fatal(err)
	}

	// Raw HTTP for the headers.
	req, _ := http.NewRequestWithContext(ctxT(t), http.MethodPost, n.URL+"/v1/users/me/export", nil)
	req.Header.Set("Authorization", "Bearer "+alice.Tokens().AccessToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("POST export: %d, %v", res.StatusCode, err)
	}
	if ct, cd := res.Header.Get("Content-Type"), res.Header.Get("Content-Disposition"); ct != "application/zip" || !strings.HasPrefix(cd, "attachment;") {
		t.Errorf("Content-Type %q, Content-Disposition %q", ct, cd)
	}
	var buf bytes.Buffer
	if _, err := alice.Export(ctxT(t), &buf); err != nil {
		t.Fatal(err)
	}
	files := readZip(t, buf.Bytes())
	for name, data := range readZip(t, raw) {
		if name != "manifest.json" && !bytes.Equal(files[name], data) {
			t.Errorf("GET and POST exports differ in %s", name)
		}
	}

	var profile client.Profile
	if err := json.Unmarshal(files["profile.json"], &profile); err != nil || profile.ID != aliceID || profile.DisplayName == nil || *profile.DisplayName != "Alice Export" {
		t.Errorf("profile.json = %s (%v)", files["profile.json"], err)
	}
	var convs []struct{ ID, Kind, Role string }
	if err := json.Unmarshal(files["conversations.json"], &convs); err != nil {
		t.Fatalf("conversations.json: %v", err)
	}
	var convIDs []string
	for _, c := range convs {
		convIDs = append(convIDs, c.ID)
	}
	slices.Sort(convIDs)
	wantConvs := []string{group.ID, direct.ID}
	slices.Sort(wantConvs)
	if !slices.Equal(convIDs, wantConvs) {
		t.Errorf("conversations.json lists %v, want alice's %v", convIDs, wantConvs)
	}
	texts := func(name string) []string {
		var msgs []client.Message
		if err := json.Unmarshal(files[name], &msgs); err != nil {
			t.Fatalf("%s: %v (%s)", name, err, files[name])
		}
		var out []string
		for _, m := range msgs {
			if m.Sender != aliceID {
				t.Errorf("%s holds a message of %s", name, m.Sender)
			}
			out = append(out, m.Text)
		}
		return out
	}
	if got := texts("messages/" + group.ID + ".json"); !slices.Equal(got, []string{"alice-in-group-1", "alice-in-group-2"}) {
		t.Errorf("group messages %q", got)
	}
	if got := texts("messages/" + direct.ID + ".json"); !slices.Equal(got, []string{"alice-in-direct"}) {
		t.Errorf("direct messages %q (a deleted message must not be exported)", got)
	}
	for name, data := range files {
		if bytes.Contains(data, []byte("SECRET")) {
			t.Errorf("%s holds another user's message: %s", name, data)
		}
	}
	if _, ok := files["messages/"+elsewhere.ID+".json"]; ok {
		t.Error("the export has a conversation alice is not in")
	}
	if status, _ := rawRequest(t, http.MethodGet, n.URL+"/v1/users/me/export", "", ""); status != 401 {
		t.Errorf("export without a token: %d", status)
	}
}

func TestPeople_DeleteAccount(t *testing.T) {
	n := startNode(t, "")
	alice, aliceID := n.user(t, "alice")
	bob, bobID := n.user(t, "bob")
	carol, carolID := n.user(t, "carol")
	me, err := alice.Me(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.UpdateProfile(ctxT(t), client.ProfileRequest{DisplayName: strp("Alice Gone"), StatusText: strp("bye")}); err != nil {
		t.Fatal(err)
	}
	group, err := alice.CreateGroup(ctxT(t), "alice's group", []string{bobID, carolID})
	if err != nil {
		t.Fatal(err)
	}
	direct, err := alice.CreateDirect(ctxT(t), bobID)
	if err != nil {
		t.Fatal(err)
	}
	for i, conv := range []string{group.ID, direct.ID, group.ID} {
		if _, err := alice.Send(ctxT(t), conv, "a"+string(rune('0'+i)), "alice's words"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := bob.Send(ctxT(t), group.ID, "b", "bob's words"); err != nil {
		t.Fatal(err)
	}
	ws, _ := connect(t, alice)
	oldToken := alice.Tokens().AccessToken

	wantErrCode(t, "wrong password", alice.DeleteAccount(ctxT(t), "not my password"), "invalid_credentials", 401)
	if _, err := alice.Me(ctxT(t)); err != nil {
		t.Fatalf("a wrong password deleted something: %v", err)
	}
	if status, body := rawRequest(t, http.MethodDelete, n.URL+"/v1/users/me", oldToken, `{}`); status != 400 || !strings.Contains(body, "invalid_argument") {
		t.Errorf("no password: %d %s", status, body)
	}
	if err := alice.DeleteAccount(ctxT(t), "a long enough passphrase"); err != nil {
		t.Fatal(err)
	}

	select {
	case <-ws.Done():
	case <-time.After(20 * time.Second):
	}
	if code := ws.CloseCode(); code != client.CloseSessionRevoked {
		t.Errorf("alice's WebSocket close code %d, want %d", code, client.CloseSessionRevoked)
	}
	if status, body := rawRequest(t, http.MethodGet, n.URL+"/v1/users/me", oldToken, ""); status != 401 || !strings.Contains(body, "unauthenticated") {
		t.Errorf("old token: %d %s", status, body)
	}
	_, err = client.New(n.URL, client.Options{}).Login(ctxT(t), me.Username, "a long enough passphrase")
	wantErrCode(t, "login after deletion", err, "invalid_credentials", 401)

	// Other members see tombstones in seq order, and the deleted user.
	for _, conv := range []string{group.ID, direct.ID} {
		h, err := bob.History(ctxT(t), conv, client.HistoryQuery{Forward: true})
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range h.Messages {
			if m.Seq != int64(i+1) {
				t.Errorf("conv %s: seq %d at index %d", conv, m.Seq, i)
			}
			if m.Sender == aliceID && (!m.Deleted || m.Text != "") {
				t.Errorf("alice's message %d is not a tombstone: %+v", m.Seq, m)
			}
			if m.Sender == bobID && m.Text != "bob's words" {
				t.Errorf("bob's message changed: %+v", m)
			}
		}
	}
	g, err := bob.Conversation(ctxT(t), group.ID)
	if err != nil {
		t.Fatal(err)
	}
	owners := 0
	for _, m := range g.Members {
		if m.User == aliceID {
			t.Error("alice is still a member of the group")
		}
		if m.Role == "owner" {
			owners++
		}
	}
	if owners != 1 {
		t.Errorf("the group has %d owners after its owner's deletion, want 1", owners)
	}
	p, err := bob.Profile(ctxT(t), aliceID)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Deleted || p.DisplayName != nil || p.Username != "" || p.StatusText != "" {
		t.Errorf("alice's profile after deletion = %+v", p)
	}
	res, err := carol.SearchPeople(ctxT(t), me.Username, "", 10)
	if err != nil || len(res.Users) != 0 {
		t.Errorf("search for the deleted username: %+v, %v", res.Users, err)
	}
	res, err = carol.SearchPeople(ctxT(t), "Alice Gone", "", 10)
	if err != nil || len(res.Users) != 0 {
		t.Errorf("search for the deleted display name: %+v, %v", res.Users, err)
	}
	_, err = bob.Send(ctxT(t), direct.ID, "to-gone", "are you there?")
	wantErrCode(t, "send to a deleted account's direct conversation", err, "forbidden", 403)
	_, err = carol.CreateDirect(ctxT(t), aliceID)
	wantErrCode(t, "direct conversation with a deleted account", err, "not_found", 404)
	wantErrCode(t, "contact of a deleted account", carol.AddContact(ctxT(t), aliceID), "not_found", 404)
	// The username is free again, for a new account with a new id.
	again, err := client.New(n.URL, client.Options{}).Register(ctxT(t), me.Username, "another long passphrase")
	if err != nil || again.User.ID == aliceID {
		t.Errorf("registering the freed username: %+v, %v", again.User, err)
	}
}
