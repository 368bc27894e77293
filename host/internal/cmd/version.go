package cmd

import (
	"path/filepath"

	"github.com/spf13/cobra"
)

// VersionReport is what `version` prints: the agent's file name, which carries its version
// (ROOT/bin/coop-agent-<first 12 hex of its image digest>).
type VersionReport struct {
	Version string `json:"version"`
}

func (e *env) newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the agent's version (its file name)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.report(VersionReport{Version: filepath.Base(e.exe)})
		},
	}
}
