//go:build tools

// Package tools pins kamal-proxy, the reverse proxy that runs on every host.
package tools

import (
	_ "github.com/basecamp/kamal-proxy/cmd/kamal-proxy"
)
