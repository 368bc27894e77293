// Package flock is a kernel lock (flock(2)) on a file or a directory, for what must not run at
// once on a host but holds no state of its own (unlike internal/lock, whose holder file says who
// holds a co-op). The kernel lets it go when its holder's process ends, however it ends, so it
// is never stale. Waiting polls, so that a context ends it.
package flock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// Poll is how often a waiting Acquire tries again.
const Poll = 10 * time.Millisecond

// Lock is a held lock.
type Lock struct {
	f *os.File
}

// Mode is how a lock is taken.
type Mode int

const (
	// Shared locks are held by any number of holders at once, never with an Exclusive one.
	Shared Mode = syscall.LOCK_SH
	// Exclusive is one holder alone.
	Exclusive Mode = syscall.LOCK_EX
)

// Acquire takes the lock on path, waiting until it is free or ctx ends. A file that is not there
// is made (mode 0644: anyone who can read it may take the lock); a directory must exist.
func Acquire(ctx context.Context, path string, mode Mode) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o644)
	if errors.Is(err, syscall.EISDIR) {
		f, err = os.Open(path)
	}
	if err != nil {
		return nil, fmt.Errorf("opening the lock %s: %w", path, err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), int(mode)|syscall.LOCK_NB)
		if err == nil {
			return &Lock{f: f}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("taking the lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for the lock %s: %w", path, context.Cause(ctx))
		case <-time.After(Poll):
		}
	}
}

// File is the lock's open file: a child process given it (exec.Cmd.ExtraFiles) holds the lock
// too, until it exits, even when this process ends first.
func (l *Lock) File() *os.File { return l.f }

// Release lets the lock go, for every process that shares it (use it once such children have
// exited), and closes the file.
func (l *Lock) Release() error {
	err := syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Close closes this process's file alone: a child that shares it keeps the lock until it exits.
func (l *Lock) Close() error { return l.f.Close() }
