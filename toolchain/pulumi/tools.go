//go:build tools

// Package tools pins the Pulumi CLI so that `go build` in this module builds it
// with exactly the versions recorded in go.sum.
package tools

import (
	_ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
)
