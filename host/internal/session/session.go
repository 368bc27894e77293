// Package session watches the client that started the agent (an SSH session, usually) and says
// when it has gone away: SIGHUP, the agent's parent process changing (the session process
// died and the agent was handed to init), or the reading end of stdout closing (the session's
// channel was torn down). SIGINT and SIGTERM count as the client leaving too. A release that has
// not switched yet gives up when its client goes, and one that has finishes.
//
// A run started with SIGHUP ignored (nohup) asked to outlive its session: then neither SIGHUP
// nor the parent going away count.
package session

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// PollInterval is how often the parent and stdout are looked at.
const PollInterval = 100 * time.Millisecond

// Watcher is a client being watched.
type Watcher struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	stop   chan struct{}
	done   sync.WaitGroup

	mu  sync.Mutex
	sig syscall.Signal
}

// Options are what is watched; the zero value watches this process's parent and stdout.
type Options struct {
	// Getppid returns the parent's pid (os.Getppid).
	Getppid func() int
	// Stdout is the file whose reader going away means the client went (os.Stdout).
	Stdout *os.File
	// Signals are the signals that end the session (SIGHUP, SIGINT, SIGTERM).
	Signals []os.Signal
	// Detached: the run outlives its session (it was started under nohup): the parent is not
	// watched and SIGHUP stays ignored. Nil: detached when SIGHUP is ignored at the start.
	Detached *bool
}

// Watch starts watching. Client is done, with the reason as its cause, once the client went.
func Watch(o Options) *Watcher {
	if o.Getppid == nil {
		o.Getppid = os.Getppid
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	detached := signal.Ignored(syscall.SIGHUP)
	if o.Detached != nil {
		detached = *o.Detached
	}
	if o.Signals == nil {
		o.Signals = []os.Signal{syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM}
	}
	if detached {
		// Notify would undo nohup's SIG_IGN.
		var keep []os.Signal
		for _, s := range o.Signals {
			if s != syscall.SIGHUP {
				keep = append(keep, s)
			}
		}
		o.Signals = keep
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	w := &Watcher{ctx: ctx, cancel: cancel, stop: make(chan struct{})}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, o.Signals...)
	parent := o.Getppid()
	fd := int(o.Stdout.Fd())
	w.done.Add(1)
	go func() {
		defer w.done.Done()
		defer signal.Stop(sigs)
		tick := time.NewTicker(PollInterval)
		defer tick.Stop()
		for {
			select {
			case <-w.stop:
				return
			case s := <-sigs:
				if sig, ok := s.(syscall.Signal); ok {
					w.mu.Lock()
					if w.sig == 0 {
						w.sig = sig
					}
					w.mu.Unlock()
				}
				if s == syscall.SIGHUP {
					w.cancel(fmt.Errorf("the client went away (SIGHUP)"))
				} else {
					w.cancel(fmt.Errorf("interrupted (%s)", unix.SignalName(s.(syscall.Signal))))
				}
			case <-tick.C:
				if p := o.Getppid(); p != parent && !detached {
					w.cancel(fmt.Errorf("the client went away (the parent process %d ended)", parent))
				} else if readerGone(fd) {
					w.cancel(fmt.Errorf("the client went away (its end of stdout closed)"))
				}
			}
		}
	}()
	return w
}

// Client is done once the client went away; its cause says how.
func (w *Watcher) Client() context.Context { return w.ctx }

// Signal is the first ending signal received, or 0.
func (w *Watcher) Signal() syscall.Signal {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.sig
}

// Stop stops watching.
func (w *Watcher) Stop() {
	close(w.stop)
	w.done.Wait()
}

// readerGone: fd is a pipe or socket whose other end has closed. A terminal, a file or
// /dev/null never reports that.
func readerGone(fd int) bool {
	fds := []unix.PollFd{{Fd: int32(fd), Events: 0}}
	n, err := unix.Poll(fds, 0)
	if err != nil || n == 0 {
		return false
	}
	return fds[0].Revents&(unix.POLLERR|unix.POLLHUP) != 0
}
