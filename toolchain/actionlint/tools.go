//go:build tools

// Package tools pins actionlint, which checks .github/workflows (npm run lint:workflows).
package tools

import (
	_ "github.com/rhysd/actionlint/cmd/actionlint"
)
