package app

import (
	"context"

	"github.com/natter-chat/natter/internal/jobs"
)

// gateJobs returns r with gate run before every job a handler registered
// on it does; r itself when gate is nil. A gate that returns an error
// fails the attempt with it, without running the handler. Tests use it to
// hold a job on one node (a gate that blocks until the job's context
// ends) and then cut that node off, as if it had died mid-job.
func gateJobs(r jobs.Runner, gate func(ctx context.Context, kind string, payload []byte) error) jobs.Runner {
	if gate == nil {
		return r
	}
	return gatedRunner{Runner: r, gate: gate}
}

type gatedRunner struct {
	jobs.Runner
	gate func(ctx context.Context, kind string, payload []byte) error
}

func (g gatedRunner) Handle(kind string, fn jobs.Handler, opts jobs.Options) {
	g.Runner.Handle(kind, func(ctx context.Context, payload []byte) error {
		if err := g.gate(ctx, kind, payload); err != nil {
			return err
		}
		return fn(ctx, payload)
	}, opts)
}
