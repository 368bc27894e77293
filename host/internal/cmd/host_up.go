package cmd

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"coop/host/internal/deploy"
	"coop/host/internal/engine"
	"coop/host/internal/proxy"
	"coop/host/internal/release"
)

// HostUpReport is what `host-up` prints.
type HostUpReport struct {
	Network        string      `json:"network"`
	NetworkCreated bool        `json:"networkCreated"`
	Proxy          ProxyReport `json:"proxy"`
}

// ProxyReport is the proxy as host-up left it.
type ProxyReport struct {
	Container string `json:"container"`
	Image     string `json:"image"`
	Changed   bool   `json:"changed"`
}

func (e *env) newHostUpCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "host-up < HOST.json",
		Short: "Create the network and start the proxy, as the host document on stdin says; idempotent",
		Long: `Reads the host document on stdin:
  {"network":"coop","proxy":{"image":"REPO@sha256:...","bindAddress":"127.0.0.1","httpPort":80,"httpsPort":443}}
The proxy is recreated only when what it runs changes (its image, network or ports).`,
		Args: noArgs("the host document comes on stdin"),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := e.decodeHost()
			if err != nil {
				return err
			}
			eng, err := connect()
			if err != nil {
				return err
			}
			defer eng.Close()
			rep, err := hostUp(cmd.Context(), eng, h, e.logf, e.block)
			if err != nil {
				return fmt.Errorf("host-up: %w", err)
			}
			return e.report(rep)
		},
	}
}

// hostUp creates the network when it is missing, and (re)creates the proxy when its config
// changed or it does not run, then waits for it to answer.
func hostUp(ctx context.Context, eng *engine.Engine, h release.Host, log func(string, ...any), block func([]byte)) (HostUpReport, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	rep := HostUpReport{Network: h.Network, Proxy: ProxyReport{Container: proxy.Container, Image: h.Proxy.Image}}
	exists, err := eng.NetworkExists(ctx, h.Network)
	if err != nil {
		return rep, err
	}
	if !exists {
		if err := eng.CreateNetwork(ctx, h.Network, map[string]string{deploy.LabelManaged: "true"}); err != nil {
			return rep, err
		}
		rep.NetworkCreated = true
		log("created network %s", h.Network)
	}

	// The proxy is recreated only when what it runs changes: its image or its ports.
	want := proxy.ConfigHash(h)
	st, err := eng.Inspect(ctx, proxy.Container)
	if err != nil && !errors.Is(err, engine.ErrNotFound) {
		return rep, err
	}
	if err != nil || st.Labels[proxy.ConfigLabel] != want || !st.Running {
		if err := engine.EnsureImage(ctx, eng, h.Proxy.Image, engine.PullAttempts, sleep, log); err != nil {
			return rep, fmt.Errorf("could not pull %s: %w", h.Proxy.Image, err)
		}
		if err := eng.Remove(ctx, proxy.Container); err != nil {
			return rep, err
		}
		if err := eng.Create(ctx, proxy.ContainerSpec(h, deploy.LabelManaged)); err != nil {
			return rep, err
		}
		if err := eng.Start(ctx, proxy.Container); err != nil {
			return rep, err
		}
		rep.Proxy.Changed = true
		log("started %s from %s", proxy.Container, h.Proxy.Image)
	}

	if err := (&proxy.Proxy{Engine: eng}).WaitAnswering(ctx); err != nil {
		log("last lines of %s:", proxy.Container)
		if out, lerr := eng.Logs(ctx, proxy.Container, deploy.LogTailLines); lerr == nil {
			block(out)
		}
		return rep, err
	}
	return rep, nil
}
