package cmd

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"coop/host/internal/deploy"
	"coop/host/internal/engine"
)

func (e *env) newStateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "state ID",
		Short: "Print what runs of the co-op: the live release (the proxy's route), whether a deploy is under way, the last release recorded",
		Long: `Prints {"coop":ID,"live":{"slot","image","releaseKey","running"}|null,"deploying":bool,"last":RECORD|null}.
live is null when the proxy routes the co-op nowhere (never released here, or removed).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := coopID(args)
			if err != nil {
				return err
			}
			return e.withEngine(cmd, func(ctx context.Context, eng *engine.Engine) error {
				s, err := deploy.State(ctx, eng, e.proxyOf(eng), id, e.coopDir(id))
				if err != nil {
					return fmt.Errorf("state %s: %w", id, err)
				}
				return e.report(s)
			})
		},
	}
}
