package cmd

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"coop/host/internal/deploy"
	"coop/host/internal/engine"
	"coop/host/internal/procfs"
	"coop/host/internal/proxy"
	"coop/host/internal/release"
)

// ReconcileReport is what `reconcile` prints.
type ReconcileReport struct {
	// Host is host-up's report for the network and the proxy, from ROOT/host.json; nil when no
	// host-up saved one (then only a proxy container that exists is started).
	Host *HostUpReport `json:"host"`
	// ProxyRunning: the proxy runs (and answers) now.
	ProxyRunning bool                `json:"proxyRunning"`
	Coops        []deploy.Reconciled `json:"coops"`
	Error        string              `json:"error,omitempty"`
}

// ok: everything was put in order, nothing left for a later run.
func (r ReconcileReport) ok() bool {
	if r.Error != "" || !r.ProxyRunning {
		return false
	}
	for _, c := range r.Coops {
		if c.Error != "" || c.Busy {
			return false
		}
	}
	return true
}

func (e *env) newReconcileCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "reconcile",
		Short: "Put the host back in order: the network, the proxy with its routes, each co-op's live slot running, idle slots stopped; idempotent",
		Long: `What the host runs by itself at boot and whenever the Docker engine (re)starts (see watch).
It never changes which release of a co-op is live: that is the proxy's route (or, if the proxy
has lost it, the release record's last entry). A co-op being deployed is left to its deploy
("busy"). Exits 1 when something could not be put in order; the report says what.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withEngine(cmd, func(ctx context.Context, eng *engine.Engine) error {
				rep := e.reconcile(ctx, eng)
				if err := e.report(rep); err != nil {
					return err
				}
				if !rep.ok() {
					return &exitError{code: ExitFailed}
				}
				return nil
			})
		},
	}
}

// reconcile brings up the network and the proxy, then puts each co-op in order.
func (e *env) reconcile(ctx context.Context, eng *engine.Engine) ReconcileReport {
	rep := ReconcileReport{Coops: []deploy.Reconciled{}}
	up, err := hostUp(ctx, eng, e.root, "reconcile", func() (release.Host, bool, error) { return loadHost(e.root) }, e.logf, e.block)
	rep.Host = up
	if err != nil {
		if up != nil {
			err = fmt.Errorf("host-up: %w", err)
		}
		rep.Error = err.Error()
		return rep
	}
	rep.ProxyRunning = true

	ids, err := deploy.Coops(e.root)
	if err != nil {
		rep.Error = err.Error()
		return rep
	}
	d := e.reconciler(eng)
	for _, id := range ids {
		rep.Coops = append(rep.Coops, d.Reconcile(ctx, id, e.coopDir(id)))
	}
	return rep
}

// reconciler is the Deployer a reconcile puts co-ops in order with.
func (e *env) reconciler(eng *engine.Engine) *deploy.Deployer {
	return &deploy.Deployer{
		Engine: eng, Proxy: e.proxyOf(eng), Log: e.logf, Block: e.block,
		Alive: procfs.Alive, StartTime: procfs.StartTime,
	}
}

// endWindows stops the idle slot of each co-op whose rollback window has ended, through a
// reconcile of that co-op alone (it takes the co-op's lock: a deploy under way goes first). When
// there was anything to do, it prints those co-ops' reports, {"coops":[...]}: the host and its
// proxy were not looked at.
func (e *env) endWindows(ctx context.Context, eng *engine.Engine) {
	ids, err := deploy.Coops(e.root)
	if err != nil {
		e.logf("rollback windows: %v", err)
		return
	}
	d := e.reconciler(eng)
	var coops []deploy.Reconciled
	for _, id := range ids {
		if dir := e.coopDir(id); deploy.WindowEnded(dir, time.Now()) {
			coops = append(coops, d.Reconcile(ctx, id, dir))
		}
	}
	if len(coops) > 0 {
		_ = e.report(struct {
			Coops []deploy.Reconciled `json:"coops"`
		}{coops})
	}
}

// startProxy starts the proxy container where no host document was saved (a host set up by an
// agent before reconcile existed): only one that exists can be started.
func startProxy(ctx context.Context, eng *engine.Engine, prx *proxy.Proxy) error {
	st, err := eng.Inspect(ctx, proxy.Container)
	if errors.Is(err, engine.ErrNotFound) {
		return fmt.Errorf("no proxy on this host and no %s to make one from (host-up saves it)", HostFile)
	}
	if err != nil {
		return err
	}
	if !st.Running {
		if err := eng.Start(ctx, proxy.Container); err != nil {
			return err
		}
	}
	return prx.WaitAnswering(ctx)
}
