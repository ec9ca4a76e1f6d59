// Package media inspects and transforms uploaded files: it detects the
// real content type from the bytes, re-encodes JPEG and PNG images to drop
// their metadata (EXIF, GPS position, text chunks), and makes thumbnails.
// It knows nothing of conversations or storage.
//
// Invariants: nothing is decoded before its declared dimensions are
// checked against MaxPixels (a small file can claim a huge image), and the
// type a caller gets from Detect is one of the allow-list or "" — never
// the uploader's claim.
package media
