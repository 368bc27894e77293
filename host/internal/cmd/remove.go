package cmd

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"coop/host/internal/deploy"
	"coop/host/internal/engine"
	"coop/host/internal/lock"
	"coop/host/internal/proxy"
)

// RemoveLockWait is how long a removal waits for a deploy of the co-op under way.
const RemoveLockWait = 600 * time.Second

// RemoveReport is what `remove` prints.
type RemoveReport struct {
	Coop    string `json:"coop"`
	Removed bool   `json:"removed"`
	Data    string `json:"data"` // kept or deleted
}

func (e *env) newRemoveCommand() *cobra.Command {
	var deleteData bool
	cmd := &cobra.Command{
		Use:   "remove ID [--delete-data]",
		Short: "Stop and remove the co-op, its route and its files; its data volume too with --delete-data",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := coopID(args)
			if err != nil {
				return err
			}
			return e.withEngine(cmd, func(ctx context.Context, eng *engine.Engine) error {
				rep, err := remove(ctx, eng, e.proxyOf(eng), e.coopDir(id), id, deleteData, e.logf)
				if err != nil {
					return fmt.Errorf("remove %s: %w", id, err)
				}
				return e.report(rep)
			})
		},
	}
	cmd.Flags().BoolVar(&deleteData, "delete-data", false, "also delete the co-op's data volume")
	return cmd
}

// remove takes the co-op's lock (when it has a directory), removes its route, its containers
// (both slots, set-aside releases, a migration) and, when asked, its data volume, then its files.
func remove(ctx context.Context, eng *engine.Engine, prx *proxy.Proxy, dir, id string, deleteData bool, log func(string, ...any)) (RemoveReport, error) {
	if info, err := os.Stat(dir); err == nil && info.IsDir() {
		l, err := lock.Acquire(ctx, dir, lock.Options{Wait: RemoveLockWait, Holder: lock.Self(deployer()), Log: log})
		if err != nil {
			return RemoveReport{}, err
		}
		defer l.Release()
	}
	if err := prx.Remove(ctx, proxy.Service(id)); err != nil {
		log("warning: the proxy did not remove the route %s: %v", proxy.Service(id), err)
	}
	names := map[string]bool{deploy.SlotName(id, deploy.Blue): true, deploy.SlotName(id, deploy.Green): true, deploy.MigrateName(id): true}
	labelled, err := eng.ListByLabel(ctx, deploy.LabelID, id)
	if err != nil {
		return RemoveReport{}, err
	}
	for _, c := range labelled {
		names[c.Name] = true
	}
	for name := range names {
		if err := eng.Remove(ctx, name); err != nil {
			return RemoveReport{}, err
		}
	}
	rep := RemoveReport{Coop: id, Removed: true, Data: "kept"}
	if deleteData {
		if err := eng.RemoveVolume(ctx, deploy.DataVolume(id)); err != nil {
			return RemoveReport{}, err
		}
		rep.Data = "deleted"
	}
	if err := os.RemoveAll(dir); err != nil {
		return RemoveReport{}, err
	}
	return rep, nil
}
