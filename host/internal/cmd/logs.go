package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"coop/host/internal/deploy"
	"coop/host/internal/engine"
)

// DefaultLogsSince is how far back `logs` reads when not told (the last hour).
const DefaultLogsSince = "1h"

func (e *env) newLogsCommand() *cobra.Command {
	var follow, whileStdin bool
	var since string
	c := &cobra.Command{
		Use:   "logs ID",
		Short: "Print the log of the co-op's live release (stdout and stderr), and with --follow go on as it grows",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := coopID(args)
			if err != nil {
				return err
			}
			if _, err := time.ParseDuration(since); err != nil {
				return fmt.Errorf("logs: --since %q: must be a duration such as 10m or 2h", since)
			}
			return e.withEngine(cmd, func(ctx context.Context, eng *engine.Engine) error {
				if whileStdin {
					// Over SSH without a terminal nothing signals the process when the client goes:
					// its stdin ends instead, and that ends the follow.
					var cancel context.CancelFunc
					ctx, cancel = context.WithCancel(ctx)
					defer cancel()
					go func() {
						_, _ = io.Copy(io.Discard, os.Stdin)
						cancel()
					}()
				}
				st, err := deploy.State(ctx, eng, e.proxyOf(eng), id, e.coopDir(id))
				if err != nil {
					return fmt.Errorf("logs %s: %w", id, err)
				}
				if st.Live == nil {
					return errors.New("logs " + id + ": nothing of the co-op serves on this host")
				}
				return eng.StreamLogs(ctx, deploy.SlotName(id, st.Live.Slot), since, follow, os.Stdout)
			})
		},
	}
	c.Flags().BoolVar(&follow, "follow", false, "go on printing as the log grows, until the client goes away")
	c.Flags().BoolVar(&whileStdin, "while-stdin-open", false, "stop when stdin ends (how a client over SSH says it has gone)")
	c.Flags().StringVar(&since, "since", DefaultLogsSince, "read from this long ago (a duration: 10m, 2h)")
	return c
}
