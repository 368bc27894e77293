package cmd

import (
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"coop/host/internal/deploy"
)

// Modes of a co-op's directory: only the deploy user enters it (the env file holds secrets);
// the config directory, mounted read-only into the app, is readable by the app's user.
const (
	CoopDirMode   os.FileMode = 0o700
	ConfigDirMode os.FileMode = 0o755
)

// PrepareReport is what `prepare` prints.
type PrepareReport struct {
	Coop string `json:"coop"`
	Dir  string `json:"dir"`
}

func (e *env) newPrepareCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "prepare ID",
		Short: "Make ROOT/coops/ID (0700) for the co-op's env file and config/",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := coopID(args)
			if err != nil {
				return err
			}
			if err := e.needRoot(); err != nil {
				return err
			}
			rep, err := prepare(e.coopDir(id), id)
			if err != nil {
				return err
			}
			return e.report(rep)
		},
	}
}

// prepare makes the co-op's directory and its config directory; idempotent.
func prepare(dir, id string) (PrepareReport, error) {
	if err := os.MkdirAll(filepath.Join(dir, deploy.ConfigDir), ConfigDirMode); err != nil {
		return PrepareReport{}, err
	}
	if err := os.Chmod(dir, CoopDirMode); err != nil {
		return PrepareReport{}, err
	}
	return PrepareReport{Coop: id, Dir: dir}, nil
}
