package cmd

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"coop/host/internal/deploy"
	"coop/host/internal/engine"
	"coop/host/internal/proxy"
)

// StatusReport is what `status` prints; Coops only with --coops.
type StatusReport struct {
	Proxy ProxyStatus         `json:"proxy"`
	Coops []deploy.CoopStatus `json:"coops,omitempty"`
}

// ProxyStatus is the proxy: whether it runs, its image, and its routes as kamal-proxy saved them.
type ProxyStatus struct {
	Running bool          `json:"running"`
	Image   string        `json:"image"`
	Routes  []proxy.Route `json:"routes"`
}

func (e *env) newStatusCommand() *cobra.Command {
	var coops bool
	c := &cobra.Command{
		Use:   "status",
		Short: "Print the proxy's state and routes, and with --coops each co-op's releases, health and lock",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			eng, err := e.connect()
			if err != nil {
				return err
			}
			defer eng.Close()
			lockPath := ""
			if e.needRoot() == nil {
				lockPath = proxyLock(e.root)
			}
			rep, err := status(cmd.Context(), eng, lockPath)
			if err != nil {
				return err
			}
			if coops {
				if err := e.needRoot(); err != nil {
					return err
				}
				if rep.Coops, err = e.coopStatuses(cmd.Context(), eng); err != nil {
					return err
				}
			}
			return e.report(rep)
		},
	}
	c.Flags().BoolVar(&coops, "coops", false, "add each co-op of this host: the live and idle releases, the live one's health, the lock's holder, the last release recorded")
	return c
}

// coopStatuses reads every co-op of ROOT, one after the other (a handful, each a few inspections).
func (e *env) coopStatuses(ctx context.Context, eng *engine.Engine) ([]deploy.CoopStatus, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	ids, err := deploy.Coops(e.root)
	if err != nil {
		return nil, err
	}
	out := make([]deploy.CoopStatus, 0, len(ids))
	for _, id := range ids {
		s, err := deploy.Status(ctx, eng, e.proxyOf(eng), id, e.coopDir(id), deploy.ProbeHTTP)
		if err != nil {
			return nil, fmt.Errorf("status of %s: %w", id, err)
		}
		out = append(out, s)
	}
	return out, nil
}

func status(ctx context.Context, eng *engine.Engine, lockPath string) (StatusReport, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	rep := StatusReport{Proxy: ProxyStatus{Routes: []proxy.Route{}}}
	st, err := eng.Inspect(ctx, proxy.Container)
	if errors.Is(err, engine.ErrNotFound) {
		return rep, nil
	}
	if err != nil {
		return rep, err
	}
	if !st.Running {
		return rep, nil
	}
	rep.Proxy.Running, rep.Proxy.Image = true, st.Image
	routes, err := (&proxy.Proxy{Engine: eng, Lock: lockPath}).Routes(ctx)
	if err != nil {
		return rep, err
	}
	rep.Proxy.Routes = routes
	return rep, nil
}
