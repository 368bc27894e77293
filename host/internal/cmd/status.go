package cmd

import (
	"context"
	"errors"

	"github.com/spf13/cobra"

	"coop/host/internal/engine"
	"coop/host/internal/proxy"
)

// StatusReport is what `status` prints.
type StatusReport struct {
	Proxy ProxyStatus `json:"proxy"`
}

// ProxyStatus is the proxy: whether it runs, its image, and its routes as kamal-proxy saved them.
type ProxyStatus struct {
	Running bool          `json:"running"`
	Image   string        `json:"image"`
	Routes  []proxy.Route `json:"routes"`
}

func (e *env) newStatusCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Print the proxy's state and routes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			eng, err := connect()
			if err != nil {
				return err
			}
			defer eng.Close()
			rep, err := status(cmd.Context(), eng)
			if err != nil {
				return err
			}
			return e.report(rep)
		},
	}
}

func status(ctx context.Context, eng *engine.Engine) (StatusReport, error) {
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
	routes, err := (&proxy.Proxy{Engine: eng}).Routes(ctx)
	if err != nil {
		return rep, err
	}
	rep.Proxy.Routes = routes
	return rep, nil
}
