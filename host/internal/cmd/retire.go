package cmd

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"coop/host/internal/proxy"
)

// retireTimeout bounds the whole retirement (the stop's own timeout plus the engine's work).
const retireTimeout = 10 * time.Minute

// newRetireCommand is the process a deploy leaves behind to stop its old slot and remove a
// set-aside release off its path (the old slot drains first, up to the drain timeout). It is
// not for people; deploy starts it.
func (e *env) newRetireCommand() *cobra.Command {
	var stop, remove, proxyCache string
	var stopTimeout int
	cmd := &cobra.Command{
		Use:    "retire --stop NAME --stop-timeout SECONDS --remove NAME",
		Short:  "Stop the old slot and remove a set-aside release (run by deploy)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			eng, err := e.connect()
			if err != nil {
				return err
			}
			defer eng.Close()
			ctx, cancel := context.WithTimeout(context.Background(), retireTimeout)
			defer cancel()
			var wg sync.WaitGroup
			var stopErr, removeErr error
			if stop != "" {
				wg.Add(1)
				go func() {
					defer wg.Done()
					stopErr = eng.Stop(ctx, stop, time.Duration(stopTimeout)*time.Second)
				}()
			}
			if remove != "" {
				wg.Add(1)
				go func() {
					defer wg.Done()
					removeErr = eng.Remove(ctx, remove)
				}()
			}
			wg.Wait()
			// The deploy switched the proxy: its state file changed. Copying it now, off the
			// deploy's path, spares the next deploy the copy (proxy.Proxy.Cache).
			if proxyCache != "" {
				prx := &proxy.Proxy{Engine: eng, Cache: proxyCache}
				if e.needRoot() == nil {
					prx.Lock = proxyLock(e.root)
				}
				_, _ = prx.Routes(ctx)
			}
			if stopErr != nil {
				return stopErr
			}
			return removeErr
		},
	}
	cmd.Flags().StringVar(&stop, "stop", "", "container to stop")
	cmd.Flags().IntVar(&stopTimeout, "stop-timeout", 30, "seconds the container gets to stop before it is killed")
	cmd.Flags().StringVar(&remove, "remove", "", "container to remove")
	cmd.Flags().StringVar(&proxyCache, "proxy-cache", "", "refresh this copy of the proxy's state afterwards")
	return cmd
}

// processRetirer starts `coop-agent retire` in a session of its own, its standard streams on
// /dev/null, so it outlives the deploy and holds nothing of the client's (an SSH session ends
// when the deploy does, not when the old slot has stopped).
type processRetirer struct {
	exe string
	// proxyCache is refreshed by the retiring process (see proxy.Proxy.Cache); "" for none.
	proxyCache string
}

func (r *processRetirer) Retire(stop string, stopTimeout time.Duration, remove string) (int, error) {
	if r.exe == "" {
		return 0, fmt.Errorf("cannot find the agent's own executable")
	}
	c := exec.Command(r.exe, "retire", "--stop", stop, "--stop-timeout", strconv.Itoa(int(stopTimeout.Seconds())), "--remove", remove, "--proxy-cache", r.proxyCache)
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := c.Start(); err != nil {
		return 0, err
	}
	pid := c.Process.Pid
	// Not waited for: it ends on its own, and init reaps it once this process has gone.
	_ = c.Process.Release()
	return pid, nil
}
