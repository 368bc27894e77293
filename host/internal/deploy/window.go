package deploy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"coop/host/internal/atomicfile"
	"coop/host/internal/engine"
)

// The rollback window: after a release switched, the previous release keeps running, idle (the
// proxy has drained it and routes nothing to it), until a deadline, so that a rollback inside the
// window is a proxy switch alone. ROOT/coops/ID/rollback-window holds "UNIX_SECONDS CONTAINER".
// Once the deadline has passed, the host's watch (or the co-op's next deploy or reconcile) stops
// the container, which stays as the retained release.
const windowFile = "rollback-window"

// Window is a co-op's open rollback window.
type Window struct {
	// Slot is the container kept running.
	Slot string
	// Until is when it is stopped.
	Until time.Time
}

// keeps: the window holds slot running at now.
func (w Window) keeps(slot string, now time.Time) bool { return w.Slot == slot && now.Before(w.Until) }

// ReadWindow reads the co-op's rollback window; ok is false when none is open.
func ReadWindow(dir string) (w Window, ok bool) {
	b, err := os.ReadFile(filepath.Join(dir, windowFile))
	if err != nil {
		return Window{}, false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return Window{}, false
	}
	secs, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return Window{}, false
	}
	return Window{Slot: f[1], Until: time.Unix(secs, 0)}, true
}

// WindowEnded: the co-op has a rollback window whose deadline has passed (its idle slot is due
// to be stopped).
func WindowEnded(dir string, now time.Time) bool {
	w, ok := ReadWindow(dir)
	return ok && !now.Before(w.Until)
}

func openWindow(dir, slot string, until time.Time) error {
	return atomicfile.Write(filepath.Join(dir, windowFile), fmt.Appendf(nil, "%d %s\n", until.Unix(), slot), 0o600)
}

func closeWindow(dir string) error {
	if err := os.Remove(filepath.Join(dir, windowFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// endWindow looks at the co-op's rollback window before its idle slot is put in order: inside
// it, the idle slot is kept running (kept is true); once it has ended, the idle slot is stopped
// and the window forgotten.
func endWindow(ctx context.Context, eng Engine, dir string, seen map[string]engine.Container, idle string, now time.Time, log func(string, ...any)) (kept bool, err error) {
	w, ok := ReadWindow(dir)
	if !ok {
		return false, nil
	}
	if w.keeps(idle, now) {
		return true, nil
	}
	if c, ok := seen[idle]; ok && c.Running() && w.Slot == idle {
		log("stopping %s: its rollback window ended at %s", idle, w.Until.UTC().Format(time.RFC3339))
		if err := eng.Stop(ctx, idle, StrayStopTimeout); err != nil {
			return false, err
		}
		c.State = "exited"
		seen[idle] = c
	}
	return false, closeWindow(dir)
}
