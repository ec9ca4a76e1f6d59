package app_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/natter-chat/natter/client"
)

// setting is what a settings frame says, for comparison.
type setting struct {
	What, Conv, Level, User string
	On, HideText            bool
}

func settingsOf(in *inbox) []setting {
	var out []setting
	for _, f := range framesOf(in, client.TypeSettings) {
		out = append(out, setting{What: f.What, Conv: f.Conv, Level: f.Level, User: f.User, On: f.On, HideText: f.HideText})
	}
	return out
}

// TestSettings_LiveOnTheUsersOwnDevicesOnly: a change of alice's
// notification level, contacts, blocks or push privacy reaches every
// device of hers at once, with the new value; bob, whom she blocks and
// who shares a conversation with her, hears nothing of it.
func TestSettings_LiveOnTheUsersOwnDevicesOnly(t *testing.T) {
	n := startNode(t, "")
	checkSettingsLive(t, n, n)
}

// TestCluster_SettingsLiveOnEveryNode: as above, with alice's devices and
// bob's on two nodes; the changes are made through the first.
func TestCluster_SettingsLiveOnEveryNode(t *testing.T) {
	t.Parallel()
	eachNATS(t, func(t *testing.T, c *cluster) {
		checkSettingsLive(t, c.start(t), c.start(t))
	})
}

// checkSettingsLive has alice change her settings over REST on node a,
// with a WebSocket open on a (her phone) and on b (her tablet), and bob
// connected on both nodes. Then she sends a message to bob through a: each
// connection gets it after every frame a published before it, so once it
// has arrived, the settings frames a connection got are all it will get.
func checkSettingsLive(t *testing.T, a, b *node) {
	t.Helper()
	alice, _ := a.user(t, "alice")
	bob, bobID := a.user(t, "bob")
	_, phone := connect(t, alice)
	_, tablet := connect(t, b.login(t, alice, "tablet"))
	_, bobOnA := connect(t, bob)
	_, bobOnB := connect(t, b.login(t, bob, "laptop"))
	ctx := ctxT(t)
	direct, err := alice.CreateDirect(ctx, bobID)
	if err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		name string
		do   func() error
	}{
		{"mute the chat with bob", func() error { return alice.SetNotificationLevel(ctx, direct.ID, "none") }},
		{"add bob to the contacts", func() error { return alice.AddContact(ctx, bobID) }},
		{"add bob again (no change)", func() error { return alice.AddContact(ctx, bobID) }},
		{"block bob", func() error { return alice.Block(ctx, bobID) }},
		{"hide message text in push notifications", func() error { return alice.SetPushSettings(ctx, true) }},
		{"unblock bob", func() error { return alice.Unblock(ctx, bobID) }},
		{"unblock bob again (no change)", func() error { return alice.Unblock(ctx, bobID) }},
		{"remove bob from the contacts", func() error { return alice.RemoveContact(ctx, bobID) }},
		{"only mentions in the chat with bob", func() error { return alice.SetNotificationLevel(ctx, direct.ID, "mentions") }},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
	}
	want := []setting{
		{What: client.SettingNotificationLevel, Conv: direct.ID, Level: "none"},
		{What: client.SettingContact, User: bobID, On: true},
		{What: client.SettingBlock, User: bobID, On: true},
		{What: client.SettingPush, HideText: true},
		{What: client.SettingBlock, User: bobID},
		{What: client.SettingContact, User: bobID},
		{What: client.SettingNotificationLevel, Conv: direct.ID, Level: "mentions"},
	}
	if _, err := alice.Send(ctx, direct.ID, "after-settings", "that was all"); err != nil {
		t.Fatal(err)
	}

	for _, dev := range []struct {
		name string
		in   *inbox
		want []setting
	}{
		{"alice's phone (on the node of the changes)", phone, want},
		{"alice's tablet", tablet, want},
		{"bob on the node of the changes", bobOnA, nil},
		{"bob on the other node", bobOnB, nil},
	} {
		waitMessages(t, dev.in, dev.name+" to get alice's message", direct.ID, 1, 20*time.Second)
		if diff := cmp.Diff(dev.want, settingsOf(dev.in)); diff != "" {
			t.Errorf("%s: settings frames (-want +got):\n%s", dev.name, diff)
		}
	}
}
