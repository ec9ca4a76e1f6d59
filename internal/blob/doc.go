// Package blob keeps attachment bytes: chat.BlobStore implementations.
// Disk, the default, stores each blob as one file under a directory (the
// node's data directory in embedded mode); an S3-compatible store for
// cluster mode and a cold tier can follow behind the same interface.
//
// Invariants: a blob is written to a temporary file, fsynced and renamed
// into place, so a reader sees the old blob or the whole new one, never a
// part; every path is opened through an os.Root, so no key can reach a
// file outside the directory.
package blob
