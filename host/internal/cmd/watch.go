package cmd

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"coop/host/internal/engine"
)

// Timings of watch.
const (
	// enginePoll is how often a missing engine is asked again.
	enginePoll = 500 * time.Millisecond
	// reconcileRetryMin and reconcileRetryMax bound the wait before a reconcile that left
	// something (a busy co-op, an error) runs again, doubling in between.
	reconcileRetryMin = 2 * time.Second
	reconcileRetryMax = 60 * time.Second
	// upgradeCheck is how often the stable link (ROOT/bin/coop-agent) is looked at: once it
	// names another agent, the watcher becomes that agent.
	upgradeCheck = 10 * time.Second
	// windowPoll is how often the co-ops' rollback windows are looked at: the idle slot of one
	// that has ended is stopped.
	windowPoll = 15 * time.Second
	// LinkName is the stable path of the current agent, ROOT/bin/coop-agent, that install updates.
	LinkName = Name
)

func (e *env) newWatchCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "watch",
		Short: "Run reconcile whenever the Docker engine becomes reachable (at boot, after a crash or a restart), and keep waiting",
		Long: `The host's own healing, run by its service manager (a systemd unit on droplets; on the local
hosts scripts/local-hosts.sh starts it) through the stable path ROOT/bin/coop-agent. It waits for
the engine, runs reconcile (its report, one JSON line, on stdout), retries while something was
left out of order, then follows the engine's event stream: when the stream ends, the engine went
away, and it waits for it again. Meanwhile it stops each co-op's idle slot once its rollback
window has ended. When ROOT/bin/coop-agent names a newer agent, it runs that one.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := e.needRoot(); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return e.watch(ctx)
		},
	}
}

func (e *env) watch(ctx context.Context) error {
	eng, err := e.connect()
	if err != nil {
		return err
	}
	defer eng.Close()
	upgrade := time.NewTicker(upgradeCheck)
	defer upgrade.Stop()
	windows := time.NewTicker(windowPoll)
	defer windows.Stop()
	for {
		if err := e.waitForEngine(ctx, eng, upgrade.C); err != nil {
			return nil // asked to stop
		}
		// The event stream is opened before the reconcile, so that an engine that goes away
		// while it runs is noticed.
		streamCtx, closeStream := context.WithCancel(ctx)
		gone := eng.Gone(streamCtx)
		retry := reconcileRetryMin
		var again <-chan time.Time
		e.logf("the Docker engine answers; reconciling")
		if rep := e.reconcile(ctx, eng); e.report(rep) == nil && !rep.ok() {
			again = time.After(retry)
		}
	follow:
		for {
			select {
			case <-ctx.Done():
				closeStream()
				return nil
			case err := <-gone:
				e.logf("the Docker engine went away (%v); waiting for it", err)
				break follow
			case <-again:
				again = nil
				if rep := e.reconcile(ctx, eng); e.report(rep) == nil && !rep.ok() {
					retry = min(2*retry, reconcileRetryMax)
					again = time.After(retry)
				}
			case <-windows.C:
				e.endWindows(ctx, eng)
			case <-upgrade.C:
				e.becomeNewer()
			}
		}
		closeStream()
	}
}

// waitForEngine returns once the engine answers, or with ctx's error.
func (e *env) waitForEngine(ctx context.Context, eng *engine.Engine, upgrade <-chan time.Time) error {
	for said := false; ; said = true {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := eng.Ping(pctx)
		cancel()
		if err == nil {
			return nil
		}
		if !said {
			e.logf("waiting for the Docker engine: %v", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-upgrade:
			e.becomeNewer()
		case <-time.After(enginePoll):
		}
	}
}

// becomeNewer replaces this process by the agent ROOT/bin/coop-agent names, when that is
// another file than the one running (install moved the link to a new version, or put a new file
// in place of this one).
func (e *env) becomeNewer() {
	link := filepath.Join(e.root, "bin", LinkName)
	target, err := filepath.EvalSymlinks(link)
	if err != nil {
		return
	}
	info, err := os.Stat(target)
	if err != nil || info.Mode()&0o111 == 0 {
		return
	}
	if self, err := os.Stat("/proc/self/exe"); err == nil && os.SameFile(self, info) {
		return
	}
	e.logf("running %s, the agent %s now names", target, link)
	if err := syscall.Exec(target, []string{link, "watch"}, os.Environ()); err != nil {
		e.logf("could not run %s: %v", target, err)
	}
}
