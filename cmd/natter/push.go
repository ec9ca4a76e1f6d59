package main

import (
	"time"

	"github.com/natter-chat/natter/internal/app"
)

// pushFlags configure push notifications (embedded in serveCmd).
type pushFlags struct {
	PushSubject  string        `name:"push-subject" help:"Contact URI push services may use to reach the operator (VAPID sub): mailto: or https:." default:"mailto:admin@localhost" env:"NATTER_PUSH_SUBJECT"`
	PushCollapse time.Duration `name:"push-collapse" help:"At most one push notification per user and conversation this often; later messages are summed into the next one." default:"30s" env:"NATTER_PUSH_COLLAPSE"`
	APNsKeyFile  string        `name:"apns-key-file" help:"APNs provider token key (.p8 file from Apple); empty turns APNs off." env:"NATTER_APNS_KEY_FILE" type:"path"`
	APNsKeyID    string        `name:"apns-key-id" help:"APNs key id of --apns-key-file." env:"NATTER_APNS_KEY_ID"`
	APNsTeamID   string        `name:"apns-team-id" help:"Apple developer team id." env:"NATTER_APNS_TEAM_ID"`
	APNsTopic    string        `name:"apns-topic" help:"The iOS app's bundle id (apns-topic)." env:"NATTER_APNS_TOPIC"`
	APNsURL      string        `name:"apns-url" help:"APNs base URL (https://api.sandbox.push.apple.com for development builds)." default:"https://api.push.apple.com" env:"NATTER_APNS_URL"`
	FCMProject   string        `name:"fcm-project" help:"Firebase project id; empty turns FCM off." env:"NATTER_FCM_PROJECT"`
	FCMTokenFile string        `name:"fcm-token-file" help:"Google service account key (JSON) for FCM, or a file holding an OAuth access token that something else keeps fresh." env:"NATTER_FCM_TOKEN_FILE" type:"path"`
	FCMURL       string        `name:"fcm-url" help:"FCM base URL." default:"https://fcm.googleapis.com" env:"NATTER_FCM_URL"`
}

func (f pushFlags) config() app.PushConfig {
	return app.PushConfig{
		Subject: f.PushSubject, Collapse: f.PushCollapse,
		APNsKeyFile: f.APNsKeyFile, APNsKeyID: f.APNsKeyID, APNsTeamID: f.APNsTeamID, APNsTopic: f.APNsTopic, APNsURL: f.APNsURL,
		FCMProject: f.FCMProject, FCMTokenFile: f.FCMTokenFile, FCMURL: f.FCMURL,
	}
}
