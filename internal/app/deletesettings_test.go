package app_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/natter-chat/natter/client"
)

// TestDeleteAccount_UnmarksLiveForThoseWhoMarkedTheUser: when bob deletes
// his account, alice, who had him as a contact, and carol, who had blocked
// him, see him leave their lists on their connected devices at once, as if
// they had removed him themselves; dave, whom bob had marked, hears
// nothing.
func TestDeleteAccount_UnmarksLiveForThoseWhoMarkedTheUser(t *testing.T) {
	n := startNode(t, "")
	checkDeletionUnmarks(t, n, n)
}

// TestCluster_DeleteAccountUnmarksLiveOnEveryNode: as above, with the
// devices on two nodes and the deletion made through the first.
func TestCluster_DeleteAccountUnmarksLiveOnEveryNode(t *testing.T) {
	t.Parallel()
	eachNATS(t, func(t *testing.T, c *cluster) {
		checkDeletionUnmarks(t, c.start(t), c.start(t))
	})
}

// checkDeletionUnmarks sets the marks up, connects alice on both nodes and
// carol and dave on one each, and has bob delete his account through a.
// Then dave sends a message to a group of the three through a: each
// connection gets it after every frame a published before it, so once it
// has arrived, the settings frames a connection got are all it will get.
func checkDeletionUnmarks(t *testing.T, a, b *node) {
	t.Helper()
	ctx := ctxT(t)
	alice, aliceID := a.user(t, "alice")
	bob, bobID := a.user(t, "bob")
	carol, carolID := a.user(t, "carol")
	dave, daveID := a.user(t, "dave")
	for _, mark := range []struct {
		name string
		do   func() error
	}{
		{"alice adds bob to her contacts", func() error { return alice.AddContact(ctx, bobID) }},
		{"carol blocks bob", func() error { return carol.Block(ctx, bobID) }},
		{"bob adds dave to his contacts", func() error { return bob.AddContact(ctx, daveID) }},
		{"bob blocks carol", func() error { return bob.Block(ctx, carolID) }},
	} {
		if err := mark.do(); err != nil {
			t.Fatalf("%s: %v", mark.name, err)
		}
	}
	group, err := dave.CreateGroup(ctx, "after bob", []string{aliceID, carolID})
	if err != nil {
		t.Fatal(err)
	}
	// Connected after the marks were made, so that the frames of those
	// changes are not in the inboxes.
	_, alicePhone := connect(t, alice)
	_, aliceTablet := connect(t, b.login(t, alice, "tablet"))
	_, carolOnB := connect(t, b.login(t, carol, "laptop"))
	_, daveOnA := connect(t, dave)

	if err := bob.DeleteAccount(ctx, "a long enough passphrase"); err != nil {
		t.Fatalf("bob deletes his account: %v", err)
	}
	if _, err := dave.Send(ctx, group.ID, "after-deletion", "bob has gone"); err != nil {
		t.Fatal(err)
	}

	aliceWants := []setting{{What: client.SettingContact, User: bobID}}
	for _, dev := range []struct {
		name string
		in   *inbox
		want []setting
	}{
		{"alice's phone (on the node of the deletion)", alicePhone, aliceWants},
		{"alice's tablet", aliceTablet, aliceWants},
		{"carol", carolOnB, []setting{{What: client.SettingBlock, User: bobID}}},
		{"dave, whom bob had marked", daveOnA, nil},
	} {
		waitMessages(t, dev.in, dev.name+" to get dave's message", group.ID, 1, 20*time.Second)
		if diff := cmp.Diff(dev.want, settingsOf(dev.in)); diff != "" {
			t.Errorf("%s: settings frames (-want +got):\n%s", dev.name, diff)
		}
	}
	// And what the frames said is what a reload shows.
	if contacts, err := alice.Contacts(ctx); err != nil || len(contacts) != 0 {
		t.Errorf("alice's contacts after bob's deletion = %v, %v; want none", contacts, err)
	}
	if blocks, err := carol.Blocks(ctx); err != nil || len(blocks) != 0 {
		t.Errorf("carol's blocks after bob's deletion = %v, %v; want none", blocks, err)
	}
}
