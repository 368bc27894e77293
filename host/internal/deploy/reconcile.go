package deploy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"coop/host/internal/engine"
	"coop/host/internal/lock"
	"coop/host/internal/proxy"
	"coop/host/internal/release"
)

// Reconciled is what a reconcile found and did for one co-op.
type Reconciled struct {
	Coop string `json:"coop"`
	// Slot is the live slot: the one the proxy routes to (or, when it has no route, the one the
	// release record names); "" when the co-op has none.
	Slot string `json:"slot"`
	// Started: the live slot was not running and was started.
	Started bool `json:"started"`
	// Routed: the proxy had no route for the co-op and was given the live slot again.
	Routed bool `json:"routed"`
	// Stopped are idle slots found running and stopped (left by a deploy the engine's end cut short).
	Stopped []string `json:"stopped"`
	// Busy: a deploy of the co-op holds its lock; it is left alone (the deploy ends it in order).
	Busy bool `json:"busy"`
	// Error is why the co-op could not be put in order.
	Error string `json:"error,omitempty"`
}

// ReconcileLockWait is how long a reconcile waits for a deploy of the co-op before leaving it.
const ReconcileLockWait = 2 * time.Second

// Reconcile puts one co-op back in order after an engine crash, an engine restart or a reboot:
// its live slot running (and routed), its idle slot stopped, nothing of an interrupted deploy
// left over. It never changes which release is live: that is the proxy's route, or, when the
// proxy has lost it, the release record's last entry. Idempotent.
func (d *Deployer) Reconcile(ctx context.Context, id, dir string) Reconciled {
	d.defaults()
	r := Reconciled{Coop: id, Stopped: []string{}}
	l, err := lock.Acquire(ctx, dir, lock.Options{Wait: ReconcileLockWait, Holder: lock.Self("reconcile"), Log: func(string, ...any) {}})
	if errors.Is(err, lock.ErrTimeout) {
		r.Busy = true
		return r
	}
	if err != nil {
		r.Error = err.Error()
		return r
	}
	defer l.Release()
	if err := d.reconcile(ctx, id, dir, &r); err != nil {
		r.Error = err.Error()
	}
	return r
}

func (d *Deployer) reconcile(ctx context.Context, id, dir string, r *Reconciled) error {
	if err := waitForInterruptedSwitch(ctx, d.Engine, dir, d.Sleep, d.Log); err != nil {
		return err
	}
	seen, live, err := look(ctx, d.Engine, d.Proxy, id)
	if err != nil {
		return err
	}
	var routeWith *release.Release
	if live == "" {
		// The proxy has no route for the co-op: a co-op never released here, or a proxy whose
		// state was lost. The release record says which slot was live, and release.json how
		// to route it.
		last, ok := lastRecord(filepath.Join(dir, ReleasesLog))
		if !ok {
			return nil
		}
		rel, err := loadRelease(dir)
		if err != nil {
			return fmt.Errorf("the proxy has no route for %s and its last release cannot be read: %w", id, err)
		}
		live, routeWith = last.Slot, &rel
	}
	r.Slot = live
	liveName, idleName := SlotName(id, live), SlotName(id, otherSlot(live))
	stopping := stoppingUnderWay(dir, d.Alive)
	wasRunning := seen[idleName].Running()
	kept, err := endWindow(ctx, d.Engine, dir, seen, idleName, d.Now(), d.Log)
	if err != nil {
		return err
	}
	if err := converge(ctx, d.Engine, id, seen, liveName, idleName, stopping || kept, d.Log); err != nil {
		return err
	}
	if wasRunning && !seen[idleName].Running() {
		r.Stopped = append(r.Stopped, idleName)
	}
	c, ok := seen[liveName]
	if !ok {
		return fmt.Errorf("the live slot %s is missing; the next deploy of %s makes it again", liveName, id)
	}
	if !c.Running() {
		// The config directory is mounted: the engine refuses to start the slot without it.
		if err := os.MkdirAll(filepath.Join(dir, ConfigDir), 0o755); err != nil {
			return err
		}
		if err := d.Engine.Start(ctx, liveName); err != nil {
			// The engine may be starting it itself (its restart policy): running is all we want.
			if st, ierr := d.Engine.Inspect(ctx, liveName); ierr != nil || !st.Running {
				return err
			}
		} else {
			r.Started = true
			d.Log("started %s, the live slot of %s", liveName, id)
		}
	}
	if routeWith != nil {
		dep := proxy.Deployment{
			Service: proxy.Service(id), Target: proxy.Target(liveName, routeWith.Port), HealthPath: routeWith.HealthPath,
			HealthInterval: 100 * time.Millisecond, DeployTimeout: time.Duration(routeWith.HealthTimeoutSeconds) * time.Second,
			DrainTimeout: time.Duration(routeWith.DrainTimeoutSeconds) * time.Second, Hosts: routeWith.Domains, TLS: routeWith.TLS,
		}
		if err := switchProxy(ctx, d.Proxy, dep, dir); err != nil {
			return fmt.Errorf("routing %s to %s again: %s", id, liveName, proxyReason(err))
		}
		r.Routed = true
		d.Log("routed %s to %s again", id, liveName)
	}
	return nil
}

// loadRelease reads the live release's document that the last deploy kept.
func loadRelease(dir string) (release.Release, error) {
	f, err := os.Open(filepath.Join(dir, ReleaseFile))
	if err != nil {
		return release.Release{}, err
	}
	defer f.Close()
	return release.DecodeRelease(f)
}

// Live is the release a co-op's live slot holds.
type Live struct {
	Slot       string `json:"slot"`
	Image      string `json:"image"`
	ReleaseKey string `json:"releaseKey"`
	Running    bool   `json:"running"`
}

// CoopState is what runs of a co-op on this host.
type CoopState struct {
	Coop string `json:"coop"`
	// Live is the release the proxy routes the co-op to; nil when it routes it nowhere (a co-op
	// never released here, or removed).
	Live *Live `json:"live"`
	// Deploying: a deploy (or a reconcile) of the co-op holds its lock now.
	Deploying bool `json:"deploying"`
	// Last is the release record's last entry (the last deploy that switched); nil when none.
	Last *Record `json:"last"`
}

// StateEngine is what reading a co-op's state needs of the engine.
type StateEngine interface {
	ListByLabel(ctx context.Context, label, value string) ([]engine.Container, error)
}

// State reads what runs of co-op id: the proxy's route (from its saved state, which a stopped
// proxy still has), the slot's container, the lock and the release record.
func State(ctx context.Context, eng StateEngine, prx Proxy, id, dir string) (CoopState, error) {
	s := CoopState{Coop: id}
	_, s.Deploying = lock.Held(dir)
	if r, ok := lastRecord(filepath.Join(dir, ReleasesLog)); ok {
		s.Last = &r
	}
	routes, err := prx.Routes(ctx)
	if errors.Is(err, engine.ErrNoContainer) {
		return s, nil // no proxy, no route
	}
	if err != nil {
		return s, fmt.Errorf("reading the proxy's routes: %w", err)
	}
	slot := liveSlot(routes, id)
	if slot == "" {
		return s, nil
	}
	list, err := eng.ListByLabel(ctx, LabelID, id)
	if err != nil {
		return s, err
	}
	s.Live = &Live{Slot: slot}
	for _, c := range list {
		if c.Name == SlotName(id, slot) {
			s.Live.Image, s.Live.ReleaseKey, s.Live.Running = c.Image, c.Release, c.Running()
		}
	}
	return s, nil
}
