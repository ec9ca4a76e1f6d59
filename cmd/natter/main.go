// Command natter is the Natter chat server and its tools: `natter serve`
// runs a node, `natter load` measures one, `natter version` says which
// build this is. Flags can also come from NATTER_* environment variables
// and a JSON config file (--config); flags win over the environment, which
// wins over the file, which wins over the defaults.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/alecthomas/kong"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

type cli struct {
	Config  kong.ConfigFlag `help:"JSON config file whose keys are flag names (e.g. {\"addr\":\":8080\"})." env:"NATTER_CONFIG" type:"existingfile"`
	Serve   serveCmd        `cmd:"" help:"Run a Natter server (embedded mode: SQLite under --data)."`
	Load    loadCmd         `cmd:"" help:"Load-test a running server (loopback only unless --allow-remote)."`
	Version versionCmd      `cmd:"" help:"Print the version."`
}

type versionCmd struct{}

func (versionCmd) Run() error {
	fmt.Println("natter", version)
	return nil
}

func main() {
	var c cli
	k := kong.Parse(&c,
		kong.Name("natter"),
		kong.Description("Natter: a real-time chat server."),
		kong.Configuration(jsonConfig),
		kong.UsageOnError(),
	)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	k.BindTo(ctx, (*context.Context)(nil))
	k.FatalIfErrorf(k.Run())
}

// jsonConfig reads a JSON config file whose keys are flag names, with
// dashes ("debug-addr") or underscores ("debug_addr"); kong's JSON
// resolver alone matches only the latter.
func jsonConfig(r io.Reader) (kong.Resolver, error) {
	var values map[string]any
	if err := json.NewDecoder(r).Decode(&values); err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	normalized := make(map[string]any, len(values))
	for k, v := range values {
		normalized[strings.ReplaceAll(k, "-", "_")] = v
	}
	b, err := json.Marshal(normalized)
	if err != nil {
		return nil, err
	}
	return kong.JSON(bytes.NewReader(b))
}
