// Package s3blob keeps attachment bytes in an S3-compatible object store
// (Amazon S3, MinIO, Ceph, Garage, R2, ...): a chat.BlobStore that every
// node of a cluster can share, and a cold tier for old media.
//
// Invariants: each blob is one object named prefix+key, written by one
// PUT (or one multipart upload) of a known size, so a reader sees the old
// object or the whole new one, never a part; credentials are held only in
// the client and never appear in errors, logs or String.
package s3blob
