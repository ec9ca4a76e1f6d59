package loadtest

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/natter-chat/natter/client"
)

// pdfHeader starts every uploaded file: the server accepts a file by its
// first bytes, and a PDF is stored as it is (no decoding, no
// re-encoding), so the scenario measures the upload path itself:
// HTTP, hashing, type detection and the durable write.
const pdfHeader = "%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"

// upload measures attachment uploads: Senders users, each in a group of
// its own, upload Uploads files of FileSize bytes each, one after
// another; each upload is POST …/attachments then one PUT of the whole
// file (the second answers once the file is checked and stored). Reports
// uploads/s, MB/s and the latency of the two requests together.
func (r *run) upload(ctx context.Context) (*Result, error) {
	o := r.opts
	users, err := r.register(ctx, "u", "uploaders", o.Senders)
	if err != nil {
		return nil, err
	}
	convs := make([]string, o.Senders)
	err = forEach(ctx, o.Senders, o.SetupParallel, func(ctx context.Context, i int) error {
		c, err := retry(ctx, func() (client.Conversation, error) { return users[i].c.CreateGroup(ctx, "uploads "+r.id, nil) })
		if err != nil {
			return fmt.Errorf("create group: %w", err)
		}
		convs[i] = c.ID
		return nil
	})
	if err != nil {
		return nil, err
	}

	r.printf("uploading: %d senders x %d files of %d bytes, at most %s\n", o.Senders, o.Uploads, o.FileSize, o.Duration)
	mctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	var lat Samples
	var fails Tally
	var attempted, done atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for i := range o.Senders {
		wg.Go(func() {
			file := make([]byte, o.FileSize)
			rand.Read(file)
			copy(file, pdfHeader)
			for j := range o.Uploads {
				if mctx.Err() != nil {
					return
				}
				// Every file differs: its bytes after the header carry the
				// upload's number.
				if len(file) >= len(pdfHeader)+8 {
					binary.BigEndian.PutUint64(file[len(pdfHeader):], uint64(j))
				}
				attempted.Add(1)
				t0 := time.Now()
				err := uploadOne(mctx, users[i].c, convs[i], fmt.Sprintf("load-%d.pdf", j), file)
				if err != nil {
					if mctx.Err() == nil {
						fails.Add(errorKind(err))
					}
					continue
				}
				lat.Add(time.Since(t0))
				done.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)

	res := Result{ElapsedSec: elapsed.Seconds(), Uploads: int(done.Load()), UploadsTried: int(attempted.Load()), FileSize: o.FileSize}
	res.UploadsPerSec = float64(res.Uploads) / elapsed.Seconds()
	res.MBPerSec = float64(res.Uploads) * float64(o.FileSize) / 1e6 / elapsed.Seconds()
	l := lat.Summary()
	res.Upload = &l
	res.Errors = fails.Map()
	if res.Uploads == 0 {
		return &res, fmt.Errorf("no upload succeeded (errors: %s)", formatTally(res.Errors))
	}
	return &res, nil
}

// uploadOne uploads data to conv as one file and checks that the server
// accepted it.
func uploadOne(ctx context.Context, c *client.Client, conv, name string, data []byte) error {
	u, err := c.CreateUpload(ctx, conv, name, int64(len(data)), "application/pdf")
	if err != nil {
		return err
	}
	u, err = c.UploadChunk(ctx, u.ID, 0, data, int64(len(data)))
	if err != nil {
		return err
	}
	if u.State != "ready" {
		return fmt.Errorf("upload %s is %q after its last byte, want ready", u.ID, u.State)
	}
	return nil
}
