package deploy

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"coop/host/internal/atomicfile"
	"coop/host/internal/backup"
	"coop/host/internal/engine"
	"coop/host/internal/lock"
	"coop/host/internal/proxy"
	"coop/host/internal/release"
)

// lockCoop takes the co-op's lock, waiting up to wait for another deploy and taking over a
// stale one.
func lockCoop(ctx context.Context, dir, by string, wait time.Duration, log func(string, ...any)) (*lock.Lock, error) {
	return lock.Acquire(ctx, dir, lock.Options{Wait: wait, Holder: lock.Self(by), Log: log})
}

// waitForInterruptedSwitch waits for the proxy switch of a deploy that was killed: it goes on
// inside the proxy (polling the new slot until its deploy timeout) and must end before this
// deploy reads the routes, or it could install its target after this deploy has decided.
func waitForInterruptedSwitch(ctx context.Context, eng Engine, dir string, sleep func(context.Context, time.Duration) error, log func(string, ...any)) error {
	marker := filepath.Join(dir, switchMarker)
	b, err := os.ReadFile(marker)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	id := strings.TrimSpace(string(b))
	for waited := false; id != ""; waited = true {
		running, err := proxy.RunningHandle(ctx, id, eng.ExecRunning)
		if err != nil {
			return fmt.Errorf("asking whether an interrupted deploy's proxy switch still runs: %w", err)
		}
		if !running {
			break
		}
		if !waited {
			log("waiting for the proxy switch of an interrupted deploy to finish")
		}
		if err := sleep(ctx, switchPoll); err != nil {
			return err
		}
	}
	return os.Remove(marker)
}

// look reads, at once, the slot the proxy routes the co-op to and the co-op's containers. The
// live slot is what the proxy routes to: nothing else is trusted with it, since a wrong guess
// would replace the container that serves.
func look(ctx context.Context, eng Engine, prx Proxy, id string) (map[string]engine.Container, string, error) {
	var (
		wg              sync.WaitGroup
		routes          []proxy.Route
		proxyState      engine.State
		routesErr, pErr error
	)
	wg.Add(2)
	go func() {
		defer wg.Done()
		routes, routesErr = prx.Routes(ctx)
	}()
	go func() {
		defer wg.Done()
		proxyState, pErr = eng.Inspect(ctx, proxy.Container)
	}()
	list, listErr := eng.ListByLabel(ctx, LabelID, id)
	wg.Wait()
	if pErr != nil {
		return nil, "", fmt.Errorf("the proxy: %w (host-up starts it)", pErr)
	}
	if !proxyState.Running {
		return nil, "", fmt.Errorf("the proxy %s is %s; a release needs it running (host-up starts it)", proxy.Container, proxyState.Status)
	}
	if routesErr != nil {
		return nil, "", fmt.Errorf("reading the proxy's routes: %w", routesErr)
	}
	if listErr != nil {
		return nil, "", listErr
	}
	seen := map[string]engine.Container{}
	for _, c := range list {
		seen[c.Name] = c
	}
	return seen, liveSlot(routes, id), nil
}

// liveSlot is the slot the proxy routes the co-op to, or "" when it has no route for it.
func liveSlot(routes []proxy.Route, id string) string {
	target := proxy.LiveTarget(routes, proxy.Service(id))
	name, _, _ := strings.Cut(target, ":")
	for _, s := range []string{Blue, Green} {
		if name == SlotName(id, s) {
			return s
		}
	}
	return ""
}

// converge puts the co-op back in order after an interrupted deploy: no one-off migration
// container left over, every set-aside release back in its slot, and nothing but the live slot
// running. seen is updated to match.
func converge(ctx context.Context, eng Engine, id string, seen map[string]engine.Container, old, newSlot string, stopping bool, log func(string, ...any)) error {
	for _, oneOff := range []string{MigrateName(id), backup.ContainerName(id)} {
		if _, ok := seen[oneOff]; ok {
			log("removing %s, left over by an interrupted deploy", oneOff)
			if err := eng.Remove(ctx, oneOff); err != nil {
				return err
			}
			delete(seen, oneOff)
		}
	}
	// A deploy cut short between setting a slot's previous release aside and its switch: the
	// previous release goes back into the slot.
	for _, slot := range []string{SlotName(id, Blue), SlotName(id, Green)} {
		aside, ok := seen[setAsideName(slot)]
		if !ok {
			continue
		}
		if slot == old {
			// The last deploy's removal of it, off its path, may be under way: either will do.
			if err := eng.Remove(ctx, setAsideName(slot)); err != nil {
				return err
			}
		} else {
			log("putting back %s's previous release, set aside by an interrupted deploy", slot)
			if err := putBack(ctx, eng, slot); err != nil {
				return err
			}
			seen[slot] = engine.Container{Name: slot, State: aside.State, Release: aside.Release, Image: aside.Image}
		}
		delete(seen, setAsideName(slot))
	}
	if c, ok := seen[newSlot]; ok && c.Running() && !stopping {
		log("stopping %s, left running by an interrupted deploy", newSlot)
		if err := eng.Stop(ctx, newSlot, StrayStopTimeout); err != nil {
			return err
		}
		c.State = "exited"
		seen[newSlot] = c
	}
	return nil
}

// migrate runs argv in a one-off container of the new image (the co-op's env, data and config),
// removed afterwards. A failure shows the migration's last lines of output.
func migrate(ctx context.Context, eng Engine, spec engine.Spec, name string, argv []string, log func(string, ...any), block func([]byte)) error {
	spec.Name = name
	spec.Cmd = argv
	spec.Restart = false
	code, out, err := eng.RunToCompletion(ctx, spec)
	if err != nil {
		return fmt.Errorf("could not run %s: %w", strings.Join(argv, " "), err)
	}
	if code != 0 {
		log("migration output:")
		block(lastLines(out, LogTailLines))
		return fmt.Errorf("exit %d from %s", code, strings.Join(argv, " "))
	}
	return nil
}

// setAside moves the idle slot's release out of the way (SLOT-old) so a new one can be tried in
// the slot. Stopping it first also ends a stop of it that may still be under way.
func setAside(ctx context.Context, eng Engine, slot string) error {
	_ = eng.Stop(ctx, slot, SetAsideStopTimeout)
	return eng.Rename(ctx, slot, setAsideName(slot))
}

// putBack puts a set-aside release back into its slot, replacing whatever is there.
func putBack(ctx context.Context, eng Engine, slot string) error {
	if err := eng.Remove(ctx, slot); err != nil {
		return err
	}
	return eng.Rename(ctx, setAsideName(slot), slot)
}

// startSlot creates and starts the new release in its slot.
func startSlot(ctx context.Context, eng Engine, spec engine.Spec) error {
	if err := eng.Create(ctx, spec); err != nil {
		return err
	}
	return eng.Start(ctx, spec.Name)
}

// switchProxy has the proxy check the new slot's health and switch to it. While the switch
// runs, its handle (an exec id, or the host process's pid) is kept in the co-op's directory: if
// this process dies, the switch goes on in the proxy and the next deploy waits for it
// (waitForInterruptedSwitch).
func switchProxy(ctx context.Context, prx Proxy, d proxy.Deployment, dir string) error {
	marker := filepath.Join(dir, switchMarker)
	err := prx.Deploy(ctx, d, func(handle string) error {
		return atomicfile.Write(marker, []byte(handle+"\n"), 0o600)
	})
	// The marker goes once the switch is known to have ended: it succeeded or kamal-proxy said
	// no. When the engine's answer was lost instead, the switch may still run: it stays.
	var refused *proxy.RefusedError
	if err == nil || errors.As(err, &refused) {
		if rmErr := os.Remove(marker); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) && err == nil {
			return rmErr
		}
	}
	return err
}

// keepOldSlot has the old slot stopped (after the drain timeout at most) and a set-aside
// release removed, off the deploy's path: in a process of their own, recorded so that the next
// deploy can wait for the stop.
func keepOldSlot(dir string, retirer Retirer, startTime func(int) (uint64, error), old string, drain time.Duration, setAside string, window time.Duration, now time.Time, log func(string, ...any)) {
	remove := ""
	if setAside != "" {
		remove = setAsideName(setAside)
	}
	if old == "" && remove == "" {
		return
	}
	// Inside a rollback window the old slot keeps running; the retiring process still removes a
	// set-aside release and refreshes the copy of the proxy's state.
	stop := old
	if window > 0 && old != "" {
		if err := openWindow(dir, old, now.Add(window)); err != nil {
			log("warning: %v (%s is stopped now instead)", err, old)
		} else {
			stop = ""
		}
	} else if err := closeWindow(dir); err != nil {
		log("warning: %v", err)
	}
	pid, err := retirer.Retire(stop, drain, remove)
	if err != nil {
		// The release is live; the next deploy stops a slot left running and removes SLOT-old.
		log("warning: could not stop %s off the deploy's path: %v", orDefault(old, remove), err)
		return
	}
	var start uint64
	if startTime != nil {
		start, _ = startTime(pid)
	}
	if err := atomicfile.Write(filepath.Join(dir, stoppingMarker), fmt.Appendf(nil, "%d %d\n", pid, start), 0o600); err != nil {
		log("warning: %v", err)
	}
}

// stoppingUnderWay: the previous deploy's stop of its old slot still runs.
func stoppingUnderWay(dir string, alive func(int, uint64) bool) bool {
	pid, start, ok := readStopping(dir)
	return ok && alive(pid, start)
}

// waitStopping waits for the previous deploy's stop of its old slot to end.
func waitStopping(ctx context.Context, dir string, alive func(int, uint64) bool, sleep func(context.Context, time.Duration) error) {
	pid, start, ok := readStopping(dir)
	for ok && alive(pid, start) {
		if sleep(ctx, stoppingPoll) != nil {
			return
		}
	}
	_ = os.Remove(filepath.Join(dir, stoppingMarker))
}

// readStopping reads "PID START" (coopctl wrote "PID" alone; START 0 then).
func readStopping(dir string) (int, uint64, bool) {
	b, err := os.ReadFile(filepath.Join(dir, stoppingMarker))
	if err != nil {
		return 0, 0, false
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, 0, false
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil {
		return 0, 0, false
	}
	var start uint64
	if len(f) > 1 {
		start, _ = strconv.ParseUint(f[1], 10, 64)
	}
	return pid, start, true
}

// Record is one line of ROOT/coops/ID/releases.log.
type Record struct {
	Time       string `json:"time"`
	Coop       string `json:"coop"`
	Image      string `json:"image"`
	Slot       string `json:"slot"`
	Reused     bool   `json:"reused"`
	ReleaseKey string `json:"releaseKey"`
	By         string `json:"by"`
	Ms         int64  `json:"ms"`
	// DeployID is the id the client gave the deploy (deploy --deploy-id); none before.
	DeployID string `json:"deployId,omitempty"`
	// Backup is the key of the database dump taken before this release's migrations.
	Backup string `json:"backup,omitempty"`
}

const recordTimeFormat = "2006-01-02T15:04:05Z"

// record appends the release to the co-op's release record, one JSON object a line.
func record(path string, r Record) error {
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// saveRelease keeps the live release's document in the co-op's directory.
func saveRelease(dir string, rel release.Release) error {
	rel.Backup = nil // secrets: never kept on the host
	b, err := json.Marshal(rel)
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, ReleaseFile), append(b, '\n'), 0o644)
}

// lastRecord is the release record's last line; ok is false when there is none.
func lastRecord(path string) (Record, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Record{}, false
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		var r Record
		if json.Unmarshal([]byte(lines[i]), &r) == nil && r.Coop != "" {
			return r, true
		}
	}
	return Record{}, false
}

// releasedImages are the images of the release record, newest first, each once.
func releasedImages(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var all []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r struct {
			Image string `json:"image"`
		}
		if json.Unmarshal(sc.Bytes(), &r) == nil && r.Image != "" {
			all = append(all, r.Image)
		}
	}
	seen := map[string]bool{}
	var out []string
	for i := len(all) - 1; i >= 0; i-- {
		if !seen[all[i]] {
			seen[all[i]] = true
			out = append(out, all[i])
		}
	}
	return out
}

// imagesToPrune are the released images beyond the live one and the retain previous ones.
func imagesToPrune(released []string, retain int) []string {
	if len(released) <= retain+1 {
		return nil
	}
	return released[retain+1:]
}

// pruneImages removes the co-op's released images except the live one and the retain previous
// ones. An image another container still uses is left (the engine refuses).
func pruneImages(ctx context.Context, eng Engine, logPath string, retain int) {
	prune := imagesToPrune(releasedImages(logPath), retain)
	if len(prune) == 0 {
		return
	}
	present, err := eng.RepoDigests(ctx)
	if err != nil {
		return
	}
	for _, img := range prune {
		if present[img] {
			_ = eng.RemoveImage(ctx, img)
		}
	}
}

// lastLines is the last n lines of out.
func lastLines(out []byte, n int) []byte {
	s := strings.TrimRight(string(out), "\n")
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return []byte(strings.Join(lines, "\n") + "\n")
}

// StaleFile lists, one a line, the release keys a database restore made stale: their migrations
// ran against a database that was then put back to before them.
const StaleFile = "stale-releases"

// MarkStale records release keys as stale (restore does, for the releases newer than the dump).
func MarkStale(dir string, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	f, err := os.OpenFile(filepath.Join(dir, StaleFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(strings.Join(keys, "\n") + "\n"); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// StaleRelease: a restore made the release key stale.
func StaleRelease(dir, key string) bool {
	b, err := os.ReadFile(filepath.Join(dir, StaleFile))
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(l) == key {
			return true
		}
	}
	return false
}

// unmarkStale forgets a key once it was deployed anew (its migrations ran again).
func unmarkStale(dir, key string) error {
	b, err := os.ReadFile(filepath.Join(dir, StaleFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var keep []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && l != key {
			keep = append(keep, l)
		}
	}
	if len(keep) == 0 {
		return os.Remove(filepath.Join(dir, StaleFile))
	}
	return atomicfile.Write(filepath.Join(dir, StaleFile), []byte(strings.Join(keep, "\n")+"\n"), 0o600)
}
