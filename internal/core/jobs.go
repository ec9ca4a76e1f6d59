package core

import (
	"context"
	"sync"
	"time"

	"github.com/natter-chat/natter/internal/jobs"
)

// Kinds of background jobs the Service enqueues and handles.
const (
	// JobThumbnail makes an image attachment's thumbnail; the payload is
	// the attachment id.
	JobThumbnail = "thumbnail"
)

// setupJobs takes the runner (or makes an in-process one) and registers
// the Service's handlers on it.
func (s *Service) setupJobs(r jobs.Runner) {
	s.jobs, s.ownJobs = r, r == nil
	if s.ownJobs {
		s.jobs = jobs.NewMemory(jobs.MemoryOptions{Logger: s.log})
	}
	if at := s.attach; at != nil {
		at.queue = s.jobs
		s.jobs.Handle(JobThumbnail, s.thumbnailJob, jobs.Options{Concurrency: at.opts.Workers, MaxAttempts: 5, BaseBackoff: 2 * time.Second})
	}
}

// runOwnJobs runs the Service's own runner until stop is called.
func (s *Service) runOwnJobs(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { _ = s.jobs.Run(ctx) })
	return func() { cancel(); wg.Wait() }
}
