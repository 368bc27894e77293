//go:build tools

// Package tools pins versitygw, the S3-compatible server that stands in for DigitalOcean Spaces
// on the local stack and in the tests (the co-ops' database backups).
package tools

import (
	_ "github.com/versity/versitygw/cmd/versitygw"
)
