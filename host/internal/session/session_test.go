package session

import (
	"context"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func waitDone(t *testing.T, ctx context.Context) string {
	t.Helper()
	select {
	case <-ctx.Done():
		return context.Cause(ctx).Error()
	case <-time.After(5 * time.Second):
		t.Fatal("the client was not seen going away")
		return ""
	}
}

func pipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

func TestStdoutReaderClosing(t *testing.T) {
	r, w := pipe(t)
	watcher := Watch(Options{Stdout: w, Signals: []os.Signal{syscall.SIGUSR1}})
	defer watcher.Stop()
	time.Sleep(2 * PollInterval)
	if watcher.Client().Err() != nil {
		t.Fatalf("gone while the reader is there: %v", context.Cause(watcher.Client()))
	}
	r.Close()
	if why := waitDone(t, watcher.Client()); why != "the client went away (its end of stdout closed)" {
		t.Fatalf("cause %q", why)
	}
}

func TestParentChanging(t *testing.T) {
	_, w := pipe(t)
	var ppid atomic.Int64
	ppid.Store(1234)
	no := false
	watcher := Watch(Options{Stdout: w, Getppid: func() int { return int(ppid.Load()) }, Signals: []os.Signal{syscall.SIGUSR1}, Detached: &no})
	defer watcher.Stop()
	ppid.Store(1)
	if why := waitDone(t, watcher.Client()); !strings.Contains(why, "parent process 1234 ended") {
		t.Fatalf("cause %q", why)
	}
}

func TestSignals(t *testing.T) {
	_, w := pipe(t)
	watcher := Watch(Options{Stdout: w, Signals: []os.Signal{syscall.SIGUSR1, syscall.SIGHUP}})
	defer watcher.Stop()
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	if why := waitDone(t, watcher.Client()); why != "interrupted (SIGUSR1)" {
		t.Fatalf("cause %q", why)
	}
	if watcher.Signal() != syscall.SIGUSR1 {
		t.Fatalf("signal %v", watcher.Signal())
	}
}

func TestATerminalOrFileIsNeverGone(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if readerGone(int(f.Fd())) {
		t.Fatal("a file's reader is gone")
	}
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	if readerGone(int(null.Fd())) {
		t.Fatal("/dev/null's reader is gone")
	}
}

func TestADetachedRunIgnoresItsParent(t *testing.T) {
	_, w := pipe(t)
	var ppid atomic.Int64
	ppid.Store(1234)
	yes := true
	watcher := Watch(Options{Stdout: w, Getppid: func() int { return int(ppid.Load()) }, Signals: []os.Signal{syscall.SIGUSR1}, Detached: &yes})
	defer watcher.Stop()
	ppid.Store(1)
	time.Sleep(3 * PollInterval)
	if watcher.Client().Err() != nil {
		t.Fatalf("a nohup run gave up when its parent went: %v", context.Cause(watcher.Client()))
	}
}
