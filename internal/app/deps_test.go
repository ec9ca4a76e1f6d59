package app_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportDirection keeps the arrows pointing inward: the domain imports
// only the standard library, adapters never import each other or the
// use-cases, and only the composition root knows every backend.
func TestImportDirection(t *testing.T) {
	const mod = "github.com/natter-chat/natter/"
	rules := []struct {
		pkg       string
		forbidden []string
		why       string
	}{
		{"internal/chat", []string{mod}, "the domain imports only the standard library"},
		{"internal/searchtext", []string{mod}, "text analysis for search is shared by core and tests; it imports no Natter package"},
		{"internal/protocol", []string{mod + "internal/core", mod + "internal/sqlite", mod + "internal/hub"}, "the wire format depends on the domain only"},
		{"internal/core", []string{mod + "internal/sqlite", mod + "internal/membus", mod + "internal/httpapi", mod + "internal/wsapi", mod + "internal/hub", mod + "internal/app"},
			"use-cases know backends only through chat interfaces and know no transport"},
		{"internal/sqlite", []string{mod + "internal/core", mod + "internal/membus", mod + "internal/auth", mod + "internal/hub"}, "an adapter imports the domain and its one library"},
		{"internal/postgres", []string{mod + "internal/core", mod + "internal/sqlite", mod + "internal/membus", mod + "internal/auth", mod + "internal/hub", mod + "internal/app"}, "an adapter imports the domain and its one library"},
		{"internal/membus", []string{mod + "internal/core", mod + "internal/sqlite", mod + "internal/hub"}, "an adapter imports the domain and its one library"},
		{"internal/natsbus", []string{mod + "internal/core", mod + "internal/sqlite", mod + "internal/postgres", mod + "internal/membus", mod + "internal/hub", mod + "internal/app"}, "an adapter imports the domain and its one library"},
		{"internal/sequencer", []string{mod + "internal/core", mod + "internal/sqlite", mod + "internal/postgres", mod + "internal/natsbus", mod + "internal/hub", mod + "internal/app"}, "the sequencer orders events; the store reaches it as a function"},
		{"internal/hub", []string{mod + "internal/sqlite", mod + "internal/membus", mod + "internal/core", mod + "internal/wsapi"}, "the hub fans out; it knows no backend or transport"},
		{"internal/httpapi", []string{mod + "internal/sqlite", mod + "internal/postgres", mod + "internal/membus", mod + "internal/natsbus"}, "transports reach backends only through core"},
		{"internal/wsapi", []string{mod + "internal/sqlite", mod + "internal/postgres", mod + "internal/membus", mod + "internal/natsbus"}, "transports reach backends only through core"},
		{"internal/push", []string{mod + "internal/core", mod + "internal/sqlite", mod + "internal/postgres", mod + "internal/membus", mod + "internal/natsbus", mod + "internal/hub", mod + "internal/httpapi", mod + "internal/app"},
			"notification delivery reaches backends only through chat interfaces"},
		{"client", []string{mod + "internal/core", mod + "internal/sqlite", mod + "internal/app"}, "the public client speaks only the wire protocol"},
		{"internal/blob", []string{mod + "internal/core", mod + "internal/sqlite", mod + "internal/postgres", mod + "internal/media", mod + "internal/app"}, "an adapter imports the domain and its one library"},
		{"internal/media", []string{mod}, "media processing knows nothing of chat, storage or transports"},
		{"internal/s3blob", []string{mod + "internal/core", mod + "internal/blob", mod + "internal/sqlite", mod + "internal/postgres", mod + "internal/media", mod + "internal/app"}, "an adapter imports the domain and its one library"},
		{"internal/jobs", []string{mod}, "the job queue API and its in-process runner import only the standard library; backends implement it elsewhere"},
	}
	for _, r := range rules {
		out, err := exec.Command("go", "list", "-deps", "../../"+r.pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", r.pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			if dep == mod+r.pkg {
				continue
			}
			for _, f := range r.forbidden {
				if strings.HasPrefix(dep, f) {
					t.Errorf("%s imports %s: forbidden because %s", r.pkg, dep, r.why)
				}
			}
		}
	}
}
