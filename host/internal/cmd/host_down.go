package cmd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"coop/host/internal/engine"
	"coop/host/internal/lock"
	"coop/host/internal/proxy"
)

// HostDownReport is what `host-down` prints.
type HostDownReport struct {
	Network        string             `json:"network"`
	NetworkRemoved bool               `json:"networkRemoved"`
	Proxy          RemovedProxyReport `json:"proxy"`
}

// RemovedProxyReport is the proxy as host-down left it: gone.
type RemovedProxyReport struct {
	Container string `json:"container"`
	Removed   bool   `json:"removed"`
}

func (e *env) newHostDownCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "host-down < HOST.json",
		Short: "Remove the proxy, its state volume and the network (the host document on stdin names it)",
		Long: `Reads the same host document as host-up on stdin. A network that still has containers
attached (a co-op not removed) is left in place, with a message.`,
		Args: noArgs("the host document comes on stdin"),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := e.decodeHost()
			if err != nil {
				return err
			}
			eng, err := e.connect()
			if err != nil {
				return err
			}
			defer eng.Close()
			root := ""
			if e.needRoot() == nil {
				root = e.root
			}
			rep, err := hostDown(cmd.Context(), eng, root, h.Network, e.logf)
			if err != nil {
				return fmt.Errorf("host-down: %w", err)
			}
			return e.report(rep)
		},
	}
}

func hostDown(ctx context.Context, eng *engine.Engine, root, network string, log func(string, ...any)) (HostDownReport, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	rep := HostDownReport{Network: network, Proxy: RemovedProxyReport{Container: proxy.Container, Removed: true}}
	if root != "" {
		// First the host document, under the host's lock: the host's own reconcile must not
		// make again what is being taken down.
		l, err := lock.Acquire(ctx, root, lock.Options{Wait: hostLockWait, Holder: lock.Self("host-down"), Log: log})
		if err != nil {
			return rep, err
		}
		defer l.Release()
		for _, f := range []string{HostFile, ProxyCache} {
			if err := os.Remove(filepath.Join(root, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return rep, err
			}
		}
	}
	if err := eng.Remove(ctx, proxy.Container); err != nil {
		return rep, err
	}
	if err := eng.RemoveVolume(ctx, proxy.StateVolume); err != nil {
		return rep, err
	}
	if root != "" {
		// The host's copy of kamal-proxy and the run directory went with the proxy.
		if err := os.RemoveAll(proxyDir(root)); err != nil {
			return rep, err
		}
	}
	exists, err := eng.NetworkExists(ctx, network)
	if err != nil {
		return rep, err
	}
	if exists {
		if err := eng.RemoveNetwork(ctx, network); err != nil {
			log("network %s still has containers attached; left in place", network)
		} else {
			rep.NetworkRemoved = true
		}
	}
	return rep, nil
}
