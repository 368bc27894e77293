package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"coop/host/internal/atomicfile"
	"coop/host/internal/deploy"
	"coop/host/internal/engine"
	"coop/host/internal/lock"
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
			eng, err := e.connect()
			if err != nil {
				return err
			}
			defer eng.Close()
			// Without a root (a host not set up for the agent) there is no lock and nothing is kept.
			root := ""
			if e.needRoot() == nil {
				root = e.root
			}
			// The host document is kept for the reconcile, which the host runs on its own; it is
			// written under the lock, so that a reconcile waiting for it reads this one.
			rep, err := hostUp(cmd.Context(), eng, root, "host-up", func() (release.Host, bool, error) { return h, true, nil }, e.logf, e.block)
			if err != nil {
				return fmt.Errorf("host-up: %w", err)
			}
			return e.report(rep)
		},
	}
}

// hostLockWait is how long host-up waits for another host-up or reconcile of the host.
const hostLockWait = 120 * time.Second

// HostFile is ROOT/host.json: the host document of the last host-up.
const HostFile = "host.json"

// saveHost keeps the host document in ROOT/host.json.
func saveHost(root string, h release.Host) error {
	b, err := json.Marshal(h)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	path := filepath.Join(root, HostFile)
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, b) {
		return nil // a reconcile's own document, read from the file: nothing to write
	}
	return atomicfile.Write(path, b, 0o644)
}

// loadHost reads ROOT/host.json; ok is false when host-up never saved one.
func loadHost(root string) (release.Host, bool, error) {
	f, err := os.Open(filepath.Join(root, HostFile))
	if errors.Is(err, os.ErrNotExist) {
		return release.Host{}, false, nil
	}
	if err != nil {
		return release.Host{}, false, err
	}
	defer f.Close()
	h, err := release.DecodeHost(f)
	if err != nil {
		return release.Host{}, false, fmt.Errorf("%s: %w", filepath.Join(root, HostFile), err)
	}
	return h, true, nil
}

// proxyDir is the host's proxy directory (proxy.Proxy.Dir) under ROOT.
func proxyDir(root string) string { return filepath.Join(root, "proxy") }

// proxySpec is the proxy container for h. An image that keeps its command socket where a
// directory can be mounted (proxy.SocketDirLabel) gets the host's run directory there, made
// here (mode 0700: only the deploy user, and root, reach the socket).
func proxySpec(ctx context.Context, eng *engine.Engine, prx *proxy.Proxy, h release.Host) (engine.Spec, error) {
	if prx.Dir == "" {
		return proxy.ContainerSpec(h, deploy.LabelManaged, "", ""), nil
	}
	labels, err := eng.ImageLabels(ctx, h.Proxy.Image)
	if err != nil {
		return engine.Spec{}, err
	}
	socketDir := labels[proxy.SocketDirLabel]
	if socketDir == "" {
		return proxy.ContainerSpec(h, deploy.LabelManaged, "", ""), nil
	}
	if err := os.MkdirAll(prx.RunDir(), 0o700); err != nil {
		return engine.Spec{}, err
	}
	if err := os.Chmod(prx.RunDir(), 0o700); err != nil {
		return engine.Spec{}, err
	}
	return proxy.ContainerSpec(h, deploy.LabelManaged, socketDir, prx.RunDir()), nil
}

// installProxyClient writes the proxy's binary to the host's copy (proxy.Proxy.Client), whole.
func installProxyClient(ctx context.Context, prx *proxy.Proxy) error {
	b, err := prx.ClientBinary(ctx)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(prx.Dir, 0o700); err != nil {
		return err
	}
	return atomicfile.Write(prx.Client(), b, 0o700)
}

// hostUp creates the network when it is missing, and (re)creates the proxy when its config
// changed or it does not run, then waits for it to answer. It holds the host's lock (when root
// is set: one host-up, host-down or reconcile at a time) and only then reads the host document
// from doc: a reconcile that waited for a host-up must not undo it with the document that host-up
// replaced. ok false: there is no document (then only a proxy that exists is started). Once the
// proxy answers, a document from doc is saved to ROOT/host.json, still under the lock.
func hostUp(ctx context.Context, eng *engine.Engine, root, by string, doc func() (release.Host, bool, error), log func(string, ...any), block func([]byte)) (*HostUpReport, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	prx := &proxy.Proxy{Engine: eng}
	if root != "" {
		prx.Dir = proxyDir(root)
		prx.Lock = proxyLock(root)
		l, err := lock.Acquire(ctx, root, lock.Options{Wait: hostLockWait, Holder: lock.Self(by), Log: log})
		if err != nil {
			return nil, err
		}
		defer l.Release()
	}
	h, ok, err := doc()
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, startProxy(ctx, eng, prx)
	}
	rep := &HostUpReport{Network: h.Network, Proxy: ProxyReport{Container: proxy.Container, Image: h.Proxy.Image}}
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

	// The proxy is recreated only when what it runs changes: its image or its ports. One that
	// is merely stopped (an engine that crashed stops every container for good) is started.
	want := proxy.ConfigHash(h)
	st, err := eng.Inspect(ctx, proxy.Container)
	if err != nil && !errors.Is(err, engine.ErrNotFound) {
		return rep, err
	}
	switch {
	case err == nil && st.Labels[proxy.ConfigLabel] == want && st.Running:
	case err == nil && st.Labels[proxy.ConfigLabel] == want && eng.Start(ctx, proxy.Container) == nil:
		rep.Proxy.Changed = true
		log("started %s again", proxy.Container)
	default:
		if err := engine.EnsureImage(ctx, eng, h.Proxy.Image, engine.PullAttempts, sleep, log); err != nil {
			return rep, fmt.Errorf("could not pull %s: %w", h.Proxy.Image, err)
		}
		spec, err := proxySpec(ctx, eng, prx, h)
		if err != nil {
			return rep, err
		}
		if err := prx.RemoveClient(); err != nil {
			return rep, err
		}
		if err := eng.Remove(ctx, proxy.Container); err != nil {
			return rep, err
		}
		if err := eng.Create(ctx, spec); err != nil {
			return rep, err
		}
		if err := eng.Start(ctx, proxy.Container); err != nil {
			return rep, err
		}
		rep.Proxy.Changed = true
		log("started %s from %s", proxy.Container, h.Proxy.Image)
	}

	if err := prx.WaitAnswering(ctx); err != nil {
		log("last lines of %s:", proxy.Container)
		if out, lerr := eng.Logs(ctx, proxy.Container, deploy.LogTailLines); lerr == nil {
			block(out)
		}
		return rep, err
	}
	if prx.Dir != "" {
		if _, err := os.Stat(prx.Client()); rep.Proxy.Changed || errors.Is(err, os.ErrNotExist) {
			// Without the copy, commands go through exec: slower, still right.
			if err := installProxyClient(ctx, prx); err != nil {
				log("warning: %v (the proxy's commands go through docker exec)", err)
			}
		}
	}
	if root != "" {
		if err := saveHost(root, h); err != nil {
			log("warning: %v (the reconcile cannot make the proxy again without it)", err)
		}
	}
	return rep, nil
}
