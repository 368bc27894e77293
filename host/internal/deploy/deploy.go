// Package deploy is a co-op's release on a host, as small named steps:
//
//	lock → wait for an interrupted switch → look (proxy route, containers) → converge after an
//	interrupted deploy → pull → back up the database (when migrations run) → migrate → start the
//	idle slot → health gate + switch (the proxy) → drain (the proxy) → keep the old slot (running
//	for the rollback window, then stopped, off the deploy's path) → record → prune → unlock
//
// A co-op ID runs in one of two slots, containers coop-ID-blue and coop-ID-green, behind the
// proxy service coop-ID. The slot the proxy routes to is live; the other holds the previous
// release for an instant rollback: running, idle, during the release's rollback window (a
// rollback is then a proxy switch alone), stopped after it. Any failure before the switch leaves the live slot
// serving and the idle slot's previous release in place.
package deploy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"coop/host/internal/backup"
	"coop/host/internal/engine"
	"coop/host/internal/proxy"
	"coop/host/internal/release"
)

// Labels on every container the agent starts for a co-op.
const (
	LabelManaged = "coop.managed"
	LabelID      = "coop.id"
	LabelSlot    = "coop.slot"
	LabelRelease = "coop.release"
	LabelImage   = "coop.image"
)

// The two slots.
const (
	Blue  = "blue"
	Green = "green"
)

// Defaults and limits of a release.
const (
	// PullAttempts: a pull is tried this often, 2 s, 4 s, ... apart.
	PullAttempts = engine.PullAttempts
	// LogTailLines of a failed container's log are shown with the failure.
	LogTailLines = 20
	// StrayStopTimeout stops a slot left running by an interrupted deploy, or a new slot given up.
	StrayStopTimeout = 5 * time.Second
	// SetAsideStopTimeout stops the idle slot before its release is set aside (it serves nothing).
	SetAsideStopTimeout = 1 * time.Second
	// switchPoll is how often an interrupted deploy's switch is asked whether it has ended.
	switchPoll = 200 * time.Millisecond
	// stoppingPoll is how often the previous deploy's stop of its old slot is looked at.
	stoppingPoll = 50 * time.Millisecond
)

// Files in a co-op's directory (ROOT/coops/ID).
const (
	EnvFile        = "env"
	ConfigDir      = "config"
	ReleasesLog    = "releases.log"
	ReleaseFile    = "release.json" // the live release's document, to route it again (reconcile)
	switchMarker   = "switch.exec"  // the handle of a proxy switch under way (proxy.RunningHandle)
	stoppingMarker = "stopping.pid" // the process stopping the old slot off the deploy's path
)

// SlotName is a slot's container.
func SlotName(id, slot string) string { return "coop-" + id + "-" + slot }

// MigrateName is the one-off migration container.
func MigrateName(id string) string { return "coop-" + id + "-migrate" }

// DataVolume is the co-op's /data volume.
func DataVolume(id string) string { return "coop-" + id + "-data" }

// setAsideName is where a slot's previous release waits while a new one is tried in the slot.
func setAsideName(slotName string) string { return slotName + "-old" }

// otherSlot is the slot that is not s.
func otherSlot(s string) string {
	if s == Blue {
		return Green
	}
	return Blue
}

// Engine is what a release needs of the Docker engine.
type Engine interface {
	ListByLabel(ctx context.Context, label, value string) ([]engine.Container, error)
	Inspect(ctx context.Context, name string) (engine.State, error)
	Create(ctx context.Context, spec engine.Spec) error
	Start(ctx context.Context, name string) error
	Stop(ctx context.Context, name string, timeout time.Duration) error
	Remove(ctx context.Context, name string) error
	Rename(ctx context.Context, from, to string) error
	RunToCompletion(ctx context.Context, spec engine.Spec) (int, []byte, error)
	Logs(ctx context.Context, name string, tail int) ([]byte, error)
	ImagePresent(ctx context.Context, ref string) (bool, error)
	Pull(ctx context.Context, ref string) error
	RepoDigests(ctx context.Context) (map[string]bool, error)
	RemoveImage(ctx context.Context, ref string) error
	ExecRunning(ctx context.Context, id string) (bool, error)
	// Ping fails when the engine does not answer (it went away).
	Ping(ctx context.Context) error
}

// Proxy is what a release needs of the proxy.
type Proxy interface {
	Routes(ctx context.Context) ([]proxy.Route, error)
	Deploy(ctx context.Context, d proxy.Deployment, started func(handle string) error) error
}

// Retirer stops the old slot and removes a set-aside release off the deploy's path, in a
// process of its own that outlives this one; it returns that process's pid.
type Retirer interface {
	Retire(stop string, stopTimeout time.Duration, remove string) (pid int, err error)
}

// BackupTaker dumps a co-op's database into the release's store before its migrations
// (internal/backup); live is the image serving the data.
type BackupTaker interface {
	Take(ctx context.Context, rel release.Release, dir, live, deployID string) (backup.Taken, error)
}

// Deployer runs releases.
type Deployer struct {
	Engine  Engine
	Proxy   Proxy
	Retirer Retirer
	// Backup takes the dump before migrations of a release with a backup section.
	Backup BackupTaker
	// Log prints a progress line; Block prints lines (a container's log) indented under it.
	Log   func(format string, args ...any)
	Block func(text []byte)
	// Now, Sleep and Alive are the clock and the process table (tests replace them).
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
	Alive func(pid int, start uint64) bool
	// StartTime reads a process's start time, to record the retiring process.
	StartTime func(pid int) (uint64, error)
	// Dial tries a TCP connection to an address (a slot that failed its health check: does it
	// listen where the proxy connects?). Default: net.DialTimeout, 2 s.
	Dial func(address string) error
}

// Options are how this deploy is run (not what it releases).
type Options struct {
	// By is who deploys, as the lock and the release record say.
	By string
	// DeployID names this deploy in the release record, so that a client whose connection was
	// cut can ask afterwards whether it is the release the host runs.
	DeployID string
	// OnlyIfRetained: switch only when the idle slot holds this very release; else change
	// nothing and report NotRetained (a rollback's fast path).
	OnlyIfRetained bool
	// LockWait is how long to wait for another deploy of the co-op.
	LockWait time.Duration
	// HealthInterval is how often the proxy polls the new slot.
	HealthInterval time.Duration
	// Client is done when the client that asked for the deploy went away (the SSH session was
	// cut): before the switch the deploy then gives up and puts everything back; after it, it
	// finishes. Nil: the client never goes.
	Client context.Context
}

// Unchanged is the report when the live slot already runs the release.
type Unchanged struct {
	Coop       string `json:"coop"`
	Changed    bool   `json:"changed"`
	Slot       string `json:"slot"`
	Image      string `json:"image"`
	ReleaseKey string `json:"releaseKey"`
}

// NotRetained is the report of --only-if-retained when the idle slot does not hold the release.
type NotRetained struct {
	Coop     string `json:"coop"`
	Changed  bool   `json:"changed"`
	Retained bool   `json:"retained"`
	Image    string `json:"image"`
}

// Released is the report of a release that switched.
type Released struct {
	Coop         string  `json:"coop"`
	Changed      bool    `json:"changed"`
	Reused       bool    `json:"reused"`
	Slot         string  `json:"slot"`
	PreviousSlot string  `json:"previousSlot"`
	Image        string  `json:"image"`
	ReleaseKey   string  `json:"releaseKey"`
	Timings      Timings `json:"timings"`
	// Backup is the key of the dump taken before the migrations; "" when none was.
	Backup string `json:"backup,omitempty"`
}

// Timings of a release's steps, in milliseconds.
type Timings struct {
	PullMs    int64 `json:"pullMs"`
	BackupMs  int64 `json:"backupMs"`
	MigrateMs int64 `json:"migrateMs"`
	StartMs   int64 `json:"startMs"`
	SwitchMs  int64 `json:"switchMs"`
	TotalMs   int64 `json:"totalMs"`
}

// Result is what a deploy reports; exactly one field is set.
type Result struct {
	Unchanged   *Unchanged
	NotRetained *NotRetained
	Released    *Released
}

// Report is the one report of the result.
func (r Result) Report() any {
	switch {
	case r.Unchanged != nil:
		return r.Unchanged
	case r.NotRetained != nil:
		return r.NotRetained
	default:
		return r.Released
	}
}

// StepError is a release that failed at a step: `deploy ID: STEP failed: WHY`.
type StepError struct {
	Coop   string
	Step   string
	Reason string
}

func (e *StepError) Error() string {
	return fmt.Sprintf("deploy %s: %s failed: %s", e.Coop, e.Step, e.Reason)
}

// EngineGoneError is a release that failed because the Docker engine went away (it crashed, was
// killed or restarted) during a step. What the engine was doing ended with it; whatever the proxy
// routes to when it is back is the release, and the host's reconcile starts it then.
type EngineGoneError struct {
	Coop   string
	Step   string
	Reason string
}

func (e *EngineGoneError) Error() string {
	return fmt.Sprintf("deploy %s: the Docker engine went away during the %s (%s); once it is back, the host's reconcile (coop-agent watch) serves the release the proxy routes to and puts the rest back", e.Coop, e.Step, e.Reason)
}

// Run releases rel into the co-op directory dir (ROOT/coops/ID).
func (d *Deployer) Run(ctx context.Context, rel release.Release, dir string, o Options) (Result, error) {
	d.defaults()
	id := rel.Coop
	if info, err := os.Stat(dir); err != nil || !info.IsDir() {
		return Result{}, fmt.Errorf("deploy %s: %s is missing (run prepare %s first)", id, dir, id)
	}
	if _, err := os.Stat(filepath.Join(dir, EnvFile)); err != nil {
		return Result{}, fmt.Errorf("deploy %s: %s is missing", id, filepath.Join(dir, EnvFile))
	}
	// The config directory is mounted into the slots and must exist: the engine would not make it.
	if err := os.MkdirAll(filepath.Join(dir, ConfigDir), 0o755); err != nil {
		return Result{}, fmt.Errorf("deploy %s: %w", id, err)
	}
	if o.Client == nil {
		o.Client = context.Background()
	}
	t0 := d.Now()

	// Lock. Waiting ends early when the client goes: nobody would get the result.
	lockCtx, releaseLockCtx := mergeDone(ctx, o.Client)
	l, err := lockCoop(lockCtx, dir, o.By, o.LockWait, d.Log)
	releaseLockCtx()
	if err != nil {
		return Result{}, fmt.Errorf("deploy %s: %w", id, err)
	}
	defer l.Release()

	if err := waitForInterruptedSwitch(ctx, d.Engine, dir, d.Sleep, d.Log); err != nil {
		return Result{}, fmt.Errorf("deploy %s: %w", id, err)
	}
	p, err := d.plan(ctx, rel, dir)
	if err != nil {
		return Result{}, fmt.Errorf("deploy %s: %w", id, err)
	}
	if p.unchanged() {
		return Result{Unchanged: &Unchanged{Coop: id, Changed: false, Slot: p.live, Image: rel.Image, ReleaseKey: p.key}}, nil
	}
	// A rollback asks for the switch alone; anything more is left to a full deploy.
	if o.OnlyIfRetained && !p.reuse {
		return Result{NotRetained: &NotRetained{Coop: id, Changed: false, Retained: false, Image: rel.Image}}, nil
	}
	t, taken, err := d.release(ctx, p, o)
	if err != nil {
		return Result{}, err
	}

	// Record the release, then prune images beyond the retention count.
	t.TotalMs = since(d.Now, t0)
	entry := Record{
		Time: d.Now().UTC().Format(recordTimeFormat), Coop: id, Image: rel.Image, Slot: p.idle,
		Reused: p.reuse, ReleaseKey: p.key, By: o.By, Ms: t.TotalMs, DeployID: o.DeployID, Backup: taken.Key,
	}
	if err := record(filepath.Join(dir, ReleasesLog), entry); err != nil {
		d.Log("warning: %s/%s: %v (the release is live)", dir, ReleasesLog, err)
	}
	if err := saveRelease(dir, rel); err != nil {
		d.Log("warning: %s/%s: %v (the release is live)", dir, ReleaseFile, err)
	}
	pruneImages(ctx, d.Engine, filepath.Join(dir, ReleasesLog), rel.Retain)
	if !p.reuse {
		if err := unmarkStale(dir, p.key); err != nil {
			d.Log("warning: %v", err)
		}
	}
	return Result{Released: &Released{
		Coop: id, Changed: true, Reused: p.reuse, Slot: p.idle, PreviousSlot: p.live,
		Image: rel.Image, ReleaseKey: p.key, Timings: t, Backup: taken.Key,
	}}, nil
}

// plan is a release's inputs on this host, once the co-op has been looked at.
type plan struct {
	rel     release.Release
	dir     string
	key     string
	spec    engine.Spec // the co-op's container, without name, slot labels or restart policy
	seen    map[string]engine.Container
	live    string // the slot the proxy routes to; "" before the first release
	idle    string // the slot this release goes into
	old     string // the live slot's container; ""
	newSlot string // the idle slot's container
	reuse   bool   // the idle slot holds this very release
	running bool   // the idle slot runs, kept inside its rollback window
}

// unchanged: the live slot runs this very release.
func (p plan) unchanged() bool {
	c, ok := p.seen[p.old]
	return p.live != "" && ok && c.State == "running" && c.Release == p.key
}

// plan reads the release's inputs (key, env file, limits), looks at the proxy and the
// co-op's containers, and converges them after an interrupted deploy.
func (d *Deployer) plan(ctx context.Context, rel release.Release, dir string) (plan, error) {
	p := plan{rel: rel, dir: dir}
	var err error
	if p.key, err = ReleaseKey(rel, dir); err != nil {
		return p, err
	}
	env, err := engine.ReadEnvFile(filepath.Join(dir, EnvFile), os.LookupEnv)
	if err != nil {
		return p, err
	}
	memory, err := engine.ParseMemory(rel.Memory)
	if err != nil {
		return p, fmt.Errorf("release.%w", err)
	}
	cpus, err := engine.ParseCPUs(rel.CPUs)
	if err != nil {
		return p, fmt.Errorf("release.%w", err)
	}
	p.spec = engine.Spec{
		Image:   rel.Image,
		Env:     env,
		Labels:  map[string]string{LabelManaged: "true", LabelID: rel.Coop},
		Network: rel.Network,
		Mounts: []engine.Mount{
			{Volume: DataVolume(rel.Coop), Target: "/data"},
			{HostDir: filepath.Join(dir, ConfigDir), Target: "/config", ReadOnly: true},
		},
		Memory: memory, NanoCPUs: cpus,
	}

	// Is the previous deploy's stop of its old slot still under way?
	stopping := stoppingUnderWay(dir, d.Alive)
	if p.seen, p.live, err = look(ctx, d.Engine, d.Proxy, rel.Coop); err != nil {
		return p, err
	}
	p.idle = otherSlot(orDefault(p.live, Green))
	p.newSlot = SlotName(rel.Coop, p.idle)
	if p.live != "" {
		p.old = SlotName(rel.Coop, p.live)
	}
	// The idle slot may be running inside its rollback window: it is left so.
	kept, err := endWindow(ctx, d.Engine, dir, p.seen, p.newSlot, d.Now(), d.Log)
	if err != nil {
		return p, err
	}
	if err := converge(ctx, d.Engine, rel.Coop, p.seen, p.old, p.newSlot, stopping || kept, d.Log); err != nil {
		return p, err
	}
	p.running = kept && p.seen[p.newSlot].Running()
	// The idle slot already holds this very release (a rollback to the previous one): start
	// it and switch. No pull, no migration.
	// A release made stale by a database restore (its schema is gone) is deployed anew, migrations
	// and all, never just switched to.
	c, ok := p.seen[p.newSlot]
	p.reuse = ok && c.Release == p.key && !StaleRelease(dir, p.key)
	return p, nil
}

// release runs the steps that change the host: pull, back up the database, migrate, start the
// idle slot, health gate and switch, keep the old slot. A failure before the switch puts everything back.
func (d *Deployer) release(ctx context.Context, p plan, o Options) (Timings, backup.Taken, error) {
	rel, id := p.rel, p.rel.Coop
	a := &attempt{d: d, ctx: ctx, id: id, client: o.Client}
	// An engine that restarts within a step (its supervisor starts it again in seconds) answers
	// by the time the step's failure is looked at: its event stream ending is what tells.
	if w, ok := d.Engine.(restartWatcher); ok {
		watchCtx, stopWatching := context.WithCancel(context.WithoutCancel(ctx))
		defer stopWatching()
		a.gone = w.Gone(watchCtx)
	}
	var t Timings
	var taken backup.Taken

	// 1. Pull by digest (skipped when the image is here). A client that goes away ends it.
	step := d.Now()
	if !p.reuse {
		pullCtx, releasePullCtx := mergeDone(ctx, o.Client)
		err := engine.EnsureImage(pullCtx, d.Engine, rel.Image, PullAttempts, d.Sleep, d.Log)
		releasePullCtx()
		if err != nil {
			return t, taken, a.fail("pull", err.Error(), "")
		}
	}
	t.PullMs = since(d.Now, step)

	// 2a. A dump of the co-op's database, stored off the host, before any migration runs. A
	//     failed backup stops the release here: nothing migrated, the old slot serving.
	step = d.Now()
	if !p.reuse && len(rel.Migrate) > 0 && rel.Backup != nil {
		if err := a.clientThere("backup"); err != nil {
			return t, taken, err
		}
		if d.Backup == nil {
			return t, taken, a.fail("backup", "this agent takes no backups", "")
		}
		live := ""
		if c, ok := p.seen[p.old]; ok && p.old != "" {
			live = c.Image
		}
		var err error
		if taken, err = d.Backup.Take(ctx, rel, p.dir, live, o.DeployID); err != nil {
			return t, backup.Taken{}, a.fail("backup", err.Error()+"; no migration ran", "")
		}
		d.Log("backed up %s's database before its migrations: %s/%s (%d bytes)", id, rel.Backup.Store.Bucket, taken.Key, taken.Bytes)
	}
	t.BackupMs = since(d.Now, step)

	// 2. Migrations, in a one-off container of the new image, before anything serves it. A
	//    migration that started is never cut short, whoever goes away.
	step = d.Now()
	if !p.reuse && len(rel.Migrate) > 0 {
		if err := a.clientThere("migration"); err != nil {
			return t, taken, err
		}
		if err := migrate(ctx, d.Engine, p.spec, MigrateName(id), rel.Migrate, d.Log, d.Block); err != nil {
			return t, taken, a.fail("migration", err.Error(), "")
		}
	}
	t.MigrateMs = since(d.Now, step)

	// 3. The idle slot: reuse it, or set its release aside (SLOT-old, put back if this deploy
	//    fails, so that a failed deploy never costs the instant rollback) and start the new one.
	if err := a.clientThere("start"); err != nil {
		return t, taken, err
	}
	step = d.Now()
	if p.reuse {
		waitStopping(ctx, p.dir, d.Alive, d.Sleep)
		// Inside the rollback window it runs already: the switch is all there is to do.
		if !p.running {
			if err := d.Engine.Start(ctx, p.newSlot); err != nil {
				return t, taken, a.fail("start", err.Error(), p.newSlot)
			}
		}
	} else {
		if _, held := p.seen[p.newSlot]; held {
			if err := setAside(ctx, d.Engine, p.newSlot); err != nil {
				return t, taken, a.fail("start", err.Error(), "")
			}
			a.setAside = p.newSlot
		}
		slot := p.spec
		slot.Name = p.newSlot
		slot.Restart = true
		slot.Labels = map[string]string{LabelManaged: "true", LabelID: id, LabelSlot: p.idle, LabelRelease: p.key, LabelImage: rel.Image}
		if err := startSlot(ctx, d.Engine, slot); err != nil {
			return t, taken, a.fail("start", err.Error(), "")
		}
	}
	t.StartMs = since(d.Now, step)

	// A client that went away will not record this release in the stack, so the host must
	// not switch to it either: give up here, putting everything back.
	if o.Client.Err() != nil {
		if !p.running {
			_ = d.Engine.Stop(ctx, p.newSlot, StrayStopTimeout)
		}
		if err := a.clientThere("switch"); err != nil {
			return t, taken, err
		}
	}

	// 4. Health gate and atomic switch: the proxy polls the new slot and routes to it only once
	//    healthy, then drains the old slot's in-flight requests before it returns. From here
	//    on the release finishes whoever goes away.
	step = d.Now()
	deployment := proxy.Deployment{
		Service:        proxy.Service(id),
		Target:         proxy.Target(p.newSlot, rel.Port),
		HealthPath:     rel.HealthPath,
		HealthInterval: o.HealthInterval,
		DeployTimeout:  time.Duration(rel.HealthTimeoutSeconds) * time.Second,
		DrainTimeout:   time.Duration(rel.DrainTimeoutSeconds) * time.Second,
		Hosts:          rel.Domains,
		TLS:            rel.TLS,
	}
	if err := switchProxy(ctx, d.Proxy, deployment, p.dir); err != nil {
		if a.engineGone() {
			return t, taken, &EngineGoneError{Coop: id, Step: "health check", Reason: proxyReason(err)}
		}
		state, hint := "missing", ""
		if s, ierr := d.Engine.Inspect(ctx, p.newSlot); ierr == nil {
			state = fmt.Sprintf("%s (exit %d)", s.Status, s.ExitCode)
			if s.Running {
				hint = listenHint(s.IPs[rel.Network], rel.Port, rel.Network, d.Dial)
			}
		}
		_ = d.Engine.Stop(ctx, p.newSlot, StrayStopTimeout)
		why := fmt.Sprintf("%s did not become healthy on %s within %d s; container %s; proxy: %s%s", p.newSlot, rel.HealthPath, rel.HealthTimeoutSeconds, state, proxyReason(err), hint)
		return t, taken, a.fail("health check", why, p.newSlot)
	}
	t.SwitchMs = since(d.Now, step)

	// 5. Keep the old slot for a rollback: running, idle, for the rollback window, then stopped.
	//    The proxy has drained it already, so a stop runs off the deploy's path; the next
	//    deploy waits for it.
	window := time.Duration(rel.RollbackWindowSeconds) * time.Second
	keepOldSlot(p.dir, d.Retirer, d.StartTime, p.old, deployment.DrainTimeout, a.setAside, window, d.Now(), d.Log)
	return t, taken, nil
}

// attempt is the state a failing release has to undo.
type attempt struct {
	d      *Deployer
	ctx    context.Context
	id     string
	client context.Context
	// setAside is the slot whose previous release this deploy set aside as SLOT-old.
	setAside string
	// gone gets a value when the engine's event stream ends (nil: the engine cannot tell).
	gone <-chan error
	// restarted: gone fired during this attempt.
	restarted bool
}

// restartWatcher is an engine that tells when it went away (internal/engine: Gone).
type restartWatcher interface {
	Gone(ctx context.Context) <-chan error
}

// engineGone: the engine went away during the attempt, whether or not it answers again now.
func (a *attempt) engineGone() bool {
	if !a.restarted && a.gone != nil {
		select {
		case <-a.gone:
			a.restarted = true
		default:
		}
	}
	return a.restarted || a.d.engineGone(a.ctx)
}

// clientThere fails the release at step, putting everything back, when the client went away.
func (a *attempt) clientThere(step string) error {
	if a.client.Err() == nil {
		return nil
	}
	return a.fail(step, context.Cause(a.client).Error()+" before the switch; nothing was switched", "")
}

// fail ends the release at step: shows the container's last log lines when there is one,
// puts a set-aside release back into its slot, and returns the step's error.
func (a *attempt) fail(step, reason, container string) error {
	if a.engineGone() {
		// Nothing can be looked at or put back now; the reconcile does it when the engine is back.
		return &EngineGoneError{Coop: a.id, Step: step, Reason: reason}
	}
	if container != "" {
		a.d.Log("last lines of %s:", container)
		if out, err := a.d.Engine.Logs(a.ctx, container, LogTailLines); err == nil {
			a.d.Block(out)
		}
	}
	if a.setAside != "" {
		if err := putBack(a.ctx, a.d.Engine, a.setAside); err != nil {
			a.d.Log("could not put back %s's previous release: %v", a.setAside, err)
		}
		a.setAside = ""
	}
	return &StepError{Coop: a.id, Step: step, Reason: reason}
}

// engineGoneWait is how long the engine gets to answer when a step failed.
const engineGoneWait = 2 * time.Second

// engineGone: the engine does not answer (asked after a step failed, to tell why it did).
func (d *Deployer) engineGone(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), engineGoneWait)
	defer cancel()
	return d.Engine.Ping(ctx) != nil
}

func (d *Deployer) defaults() {
	if d.Log == nil {
		d.Log = func(string, ...any) {}
	}
	if d.Block == nil {
		d.Block = func([]byte) {}
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Dial == nil {
		d.Dial = dialTimeout
	}
	if d.Sleep == nil {
		d.Sleep = sleep
	}
}

func sleep(ctx context.Context, dur time.Duration) error {
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-time.After(dur):
		return nil
	}
}

func since(now func() time.Time, t time.Time) int64 { return now().Sub(t).Milliseconds() }

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// mergeDone is ctx, also done (with other's cause) when other is; release frees it.
func mergeDone(ctx, other context.Context) (merged context.Context, release func()) {
	merged, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(other, func() { cancel(context.Cause(other)) })
	return merged, func() {
		stop()
		cancel(nil)
	}
}

// proxyReason is the proxy's own words for a failed switch, or the engine's when it went away.
// dialTimeout tries a TCP connection to address for up to 2 s.
func dialTimeout(address string) error {
	c, err := net.DialTimeout("tcp", address, 2*time.Second)
	if err == nil {
		_ = c.Close()
	}
	return err
}

// listenHint says why a running slot never answered when the reason is where it listens: its
// address on the co-op network takes no connection on the release's port (an app that listens
// on 127.0.0.1, or on another port, never gets the proxy's requests). "" when it does, or when
// the slot has no address to try.
func listenHint(ip string, port int, network string, dial func(string) error) string {
	if ip == "" {
		return ""
	}
	address := net.JoinHostPort(ip, strconv.Itoa(port))
	if err := dial(address); err != nil {
		return fmt.Sprintf("; nothing accepts connections on %s (the container's address on %s, port %d of the release): the app must listen on all interfaces (0.0.0.0 or ::), on that port, not on 127.0.0.1 (%v)", address, network, port, err)
	}
	return ""
}

func proxyReason(err error) string {
	if errors.Is(err, engine.ErrEngineDown) {
		return "the Docker engine stopped answering (" + err.Error() + ")"
	}
	var refused *proxy.RefusedError
	if errors.As(err, &refused) {
		return refused.LastLine
	}
	return err.Error()
}
