package client_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/natter-chat/natter/client"
)

func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c := client.New("http://127.0.0.1:8080", client.Options{Device: "example"})
	if _, err := c.Login(ctx, "alice", "correct horse battery staple"); err != nil {
		if client.ErrorCode(err) == "invalid_credentials" {
			log.Fatal("wrong username or password")
		}
		log.Fatal(err)
	}
	conv, err := c.CreateDirect(ctx, "1234567890")
	if err != nil {
		log.Fatal(err)
	}

	conn, err := c.Connect(ctx, client.ConnOptions{
		OnEvent: func(f client.ServerFrame) {
			switch f.Type {
			case client.TypeMessage:
				if m, err := f.Msg(); err == nil && m != nil {
					fmt.Printf("#%d %s: %s\n", m.Seq, m.Sender, m.Text)
				}
			case client.TypeReconnect:
				fmt.Printf("server draining; reconnect in %dms\n", f.AfterMS)
			}
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	msg, duplicate, err := conn.Send(ctx, conv.ID, "example-1", "hello")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("stored as seq", msg.Seq, "duplicate:", duplicate)

	missed, err := conn.CatchUp(ctx, conv.ID, 0)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(missed), "messages in the conversation")
}
