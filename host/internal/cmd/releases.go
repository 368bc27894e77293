package cmd

import (
	"errors"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"coop/host/internal/deploy"
)

func (e *env) newReleasesCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "releases ID",
		Short: "Print the co-op's release record on this host (one JSON object a line)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := coopID(args)
			if err != nil {
				return err
			}
			if err := e.needRoot(); err != nil {
				return err
			}
			f, err := os.Open(filepath.Join(e.coopDir(id), deploy.ReleasesLog))
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(e.stdout, f)
			return err
		},
	}
}
