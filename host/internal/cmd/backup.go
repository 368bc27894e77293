package cmd

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"coop/host/internal/backup"
	"coop/host/internal/deploy"
	"coop/host/internal/engine"
	"coop/host/internal/lock"
	"coop/host/internal/proxy"
	"coop/host/internal/release"
)

// BackupsReport is what `backups` prints: the co-op's stored dumps, oldest first.
type BackupsReport struct {
	Coop    string         `json:"coop"`
	Backups []backup.Entry `json:"backups"`
}

// RestoreReport is what `restore` prints.
type RestoreReport struct {
	Coop     string `json:"coop"`
	Key      string `json:"key"`
	Restored bool   `json:"restored"`
	// Held: the proxy refuses the co-op's requests (503) until `resume`.
	Held    bool     `json:"held"`
	Stopped []string `json:"stopped"`
	Ms      int64    `json:"ms"`
}

// ResumeReport is what `resume` prints.
type ResumeReport struct {
	Coop    string `json:"coop"`
	Resumed bool   `json:"resumed"`
}

func (e *env) decodeBackup() (release.Backup, error) {
	r, err := e.documentReader("backup")
	if err != nil {
		return release.Backup{}, err
	}
	return release.DecodeBackup(r)
}

func (e *env) newBackupsCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "backups ID < BACKUP.json",
		Short: "List the co-op's database backups in the store (oldest first), with the release each preceded",
		Long: `Reads the backup section of a release document on stdin (its store and keys):
  {"image":"REPO@sha256:...","keep":7,"database":"postgresql://...","store":{"endpoint":...}}`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := coopID(args)
			if err != nil {
				return err
			}
			b, err := e.decodeBackup()
			if err != nil {
				return err
			}
			list, err := backup.List(ctxOf(cmd), b, id)
			if err != nil {
				return fmt.Errorf("backups of %s: %w", id, err)
			}
			if list == nil {
				list = []backup.Entry{}
			}
			return e.report(BackupsReport{Coop: id, Backups: list})
		},
	}
}

func (e *env) newRestoreCommand() *cobra.Command {
	return e.restoreCommand("restore ID --key KEY < BACKUP.json",
		"Hold the co-op's traffic, stop its slots and restore its database from a backup; `resume` lets the traffic through again",
		`Under the co-op's lock: the proxy refuses the co-op's requests (kamal-proxy stop: 503, after
the in-flight ones drain), both slots are stopped (no app writes during the restore), and the
dump at KEY replaces the database in one transaction. The traffic stays held: switch to the
release that goes with the restored schema (deploy), then run resume. On a co-op served by
several hosts, run hold on the others first: the database is theirs too.`, true)
}

func (e *env) newHoldCommand() *cobra.Command {
	return e.restoreCommand("hold ID --key KEY < BACKUP.json",
		"Hold the co-op's traffic and stop its slots on this host while another host restores its database from the backup at KEY",
		`What restore does before it restores, and no more: under the co-op's lock the proxy refuses the
co-op's requests (503), both slots are stopped (no writes from this host, no connection that
would hold up the restore's transaction), and the releases in them that do not go with the
backup's schema are marked stale (a later deploy of one migrates again, never just switches
to it). resume lets the traffic through again.`, false)
}

// restoreCommand is restore (restoring true) or hold: the same input, checks and report.
func (e *env) restoreCommand(use, short, long string, restoring bool) *cobra.Command {
	var key string
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			verb := strings.Fields(use)[0]
			id, err := coopID(args)
			if err != nil {
				return err
			}
			if key == "" {
				return fmt.Errorf("--key is required (npm run rollback -- --preview names the backup)")
			}
			b, err := e.decodeBackup()
			if err != nil {
				return err
			}
			if err := e.needRoot(); err != nil {
				return err
			}
			dir := e.coopDir(id)
			if info, err := os.Stat(dir); err != nil || !info.IsDir() {
				return fmt.Errorf("%s %s: %s is missing: the co-op is not on this host", verb, id, dir)
			}
			eng, err := e.connect()
			if err != nil {
				return err
			}
			defer eng.Close()
			rep, err := e.restore(ctxOf(cmd), eng, b, id, dir, key, restoring)
			if err != nil {
				return fmt.Errorf("%s %s: %w", verb, id, err)
			}
			return e.report(rep)
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "the backup's key in the store (as `backups` lists it)")
	return cmd
}

// restore holds the co-op (see hold) and, when restoring, restores its database from the
// backup at key; all under the co-op's lock.
func (e *env) restore(ctx context.Context, eng *engine.Engine, b release.Backup, id, dir, key string, restoring bool) (RestoreReport, error) {
	t0 := time.Now()
	l, err := lock.Acquire(ctx, dir, lock.Options{Wait: DefaultLockWait, Holder: lock.Self(deployer()), Log: e.logf})
	if err != nil {
		return RestoreReport{}, err
	}
	defer l.Release()
	network, err := coopNetwork(dir)
	if err != nil {
		return RestoreReport{}, err
	}
	rep, err := e.hold(ctx, eng, b, id, dir, key)
	if err != nil || !restoring {
		rep.Ms = time.Since(t0).Milliseconds()
		return rep, err
	}
	m := &backup.Maker{Engine: eng, Log: e.logf}
	if err := m.Restore(ctx, b, id, network, dir, key); err != nil {
		return rep, err
	}
	rep.Restored = true
	rep.Ms = time.Since(t0).Milliseconds()
	return rep, nil
}

// hold makes the proxy refuse the co-op's requests, stops both its slots and marks stale the
// releases in them that the backup at key does not go with. The caller holds the co-op's lock.
func (e *env) hold(ctx context.Context, eng *engine.Engine, b release.Backup, id, dir, key string) (RestoreReport, error) {
	if err := e.proxyOf(eng).Run(ctx, "stop", proxy.Service(id)); err != nil {
		return RestoreReport{}, fmt.Errorf("holding the traffic: %w", err)
	}
	e.logf("%s: the proxy refuses its requests (503) until resume", id)
	// Which release served the data dumped: every other release in the slots migrated past it.
	meta, err := backup.StoreOf(b).Head(ctx, key)
	if err != nil {
		return RestoreReport{}, fmt.Errorf("the backup %s: %w", key, err)
	}
	rep := RestoreReport{Coop: id, Key: key, Held: true, Stopped: []string{}}
	containers, err := eng.ListByLabel(ctx, deploy.LabelID, id)
	if err != nil {
		return rep, err
	}
	var stale []string
	for _, c := range containers {
		if c.Release != "" && c.Image != meta[backup.MetaLive] {
			stale = append(stale, c.Release)
		}
	}
	for _, slot := range []string{deploy.Blue, deploy.Green} {
		name := deploy.SlotName(id, slot)
		st, err := eng.Inspect(ctx, name)
		if err != nil || !st.Running {
			continue
		}
		if err := eng.Stop(ctx, name, deploy.StrayStopTimeout); err != nil {
			return rep, fmt.Errorf("stopping %s: %w", name, err)
		}
		rep.Stopped = append(rep.Stopped, name)
	}
	// Before the restore: a release marked stale is deployed anew (migrations and all), never
	// switched to as it sits in its slot.
	return rep, deploy.MarkStale(dir, stale)
}

// coopNetwork is the network of the co-op's live release (its saved document), which reaches
// the database the way the app does.
func coopNetwork(dir string) (string, error) {
	f, err := os.Open(dir + "/" + deploy.ReleaseFile)
	if err != nil {
		return "", fmt.Errorf("the co-op has no saved release (%v): deploy it first", err)
	}
	defer f.Close()
	rel, err := release.DecodeRelease(f)
	if err != nil {
		return "", err
	}
	return rel.Network, nil
}

func (e *env) newResumeCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "resume ID",
		Short: "Let the co-op's traffic through the proxy again after a restore",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := coopID(args)
			if err != nil {
				return err
			}
			eng, err := e.connect()
			if err != nil {
				return err
			}
			defer eng.Close()
			if err := e.proxyOf(eng).Run(ctxOf(cmd), "resume", proxy.Service(id)); err != nil {
				return fmt.Errorf("resume %s: %w", id, err)
			}
			return e.report(ResumeReport{Coop: id, Resumed: true})
		},
	}
}
