package cmd

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"time"

	"github.com/spf13/cobra"

	"coop/host/internal/backup"
	"coop/host/internal/deploy"
	"coop/host/internal/procfs"
	"coop/host/internal/release"
	"coop/host/internal/session"
)

// Defaults of deploy's flags.
const (
	// DefaultLockWait is how long a deploy waits for another deploy of the same co-op.
	DefaultLockWait = 600 * time.Second
	// DefaultHealthInterval is how often the proxy polls the new slot's health path.
	DefaultHealthInterval = 100 * time.Millisecond
	// maxHealthInterval bounds --health-interval (kamal-proxy polls within its deploy timeout).
	maxHealthInterval = 60 * time.Second
)

type deployFlags struct {
	onlyIfRetained bool
	lockWait       time.Duration
	healthInterval float64 // seconds
	deployID       string
}

// deployIDPattern is what --deploy-id takes: a name for the deploy (a UUID, say), not a secret.
var deployIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func (e *env) newDeployCommand() *cobra.Command {
	f := deployFlags{}
	var lockWaitSeconds int
	cmd := &cobra.Command{
		Use:   "deploy < RELEASE.json",
		Short: "Release a co-op: lock, pull, migrate, start the idle slot, health gate, switch, drain, keep, prune, record",
		Long: `Reads the release document on stdin:
  {"coop":"alpha","image":"REPO@sha256:<64 hex>","port":8080,"healthPath":"/health",
   "domains":["alpha.example.org"],"migrate":["migrate"],"memory":"512m","cpus":"1",
   "network":"coop","retain":2,"tls":false,"healthTimeoutSeconds":60,"drainTimeoutSeconds":30}
memory and cpus may be left out; every other field is required, and unknown fields are refused.
The same document again changes nothing ({"changed":false}). With --only-if-retained the deploy
only switches to the idle slot when it holds this very release, and exits 3 otherwise.
The deployer's name comes from COOP_DEPLOY_BY (default: the user's name).`,
		Args: noArgs("the release document comes on stdin"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if lockWaitSeconds < 0 {
				return fmt.Errorf("--lock-wait must be 0 or more seconds, got %d", lockWaitSeconds)
			}
			f.lockWait = time.Duration(lockWaitSeconds) * time.Second
			if f.deployID != "" && !deployIDPattern.MatchString(f.deployID) {
				return fmt.Errorf("--deploy-id must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit; got %q", f.deployID)
			}
			interval := time.Duration(f.healthInterval * float64(time.Second))
			if interval < time.Millisecond || interval > maxHealthInterval {
				return fmt.Errorf("--health-interval must be from 0.001 to %d seconds, got %g", int(maxHealthInterval.Seconds()), f.healthInterval)
			}
			return e.deploy(cmd.Context(), f, interval)
		},
	}
	cmd.Flags().BoolVar(&f.onlyIfRetained, "only-if-retained", false, "switch only if the idle slot holds this release (rollback's fast path); else change nothing and exit 3")
	cmd.Flags().IntVar(&lockWaitSeconds, "lock-wait", int(DefaultLockWait.Seconds()), "seconds to wait for another deploy of the co-op")
	cmd.Flags().StringVar(&f.deployID, "deploy-id", "", "a name for this deploy, kept in the release record (see state): how a client whose connection was cut tells whether its release is the one the host runs")
	cmd.Flags().Float64Var(&f.healthInterval, "health-interval", DefaultHealthInterval.Seconds(), "seconds between the proxy's health checks of the new slot")
	return cmd
}

func (e *env) deploy(ctx context.Context, f deployFlags, healthInterval time.Duration) error {
	if ctx == nil {
		ctx = context.Background()
	}
	in, err := e.documentReader("release")
	if err != nil {
		return err
	}
	rel, err := release.DecodeRelease(in)
	if err != nil {
		return err
	}
	if err := e.needRoot(); err != nil {
		return err
	}
	stdout, ok := e.stdout.(*os.File)
	if !ok {
		stdout = os.Stdout
	}
	watch := session.Watch(session.Options{Stdout: stdout})
	defer watch.Stop()

	eng, err := e.connect()
	if err != nil {
		return err
	}
	defer eng.Close()
	d := &deploy.Deployer{
		Engine:    eng,
		Proxy:     e.proxyOf(eng),
		Retirer:   &processRetirer{exe: e.exe, proxyCache: e.proxyOf(eng).Cache},
		Log:       e.logf,
		Block:     e.block,
		Alive:     procfs.Alive,
		StartTime: procfs.StartTime,
		Backup:    &backup.Maker{Engine: eng, Log: e.logf},
	}
	res, err := d.Run(ctx, rel, e.coopDir(rel.Coop), deploy.Options{
		By:             deployer(),
		DeployID:       f.deployID,
		OnlyIfRetained: f.onlyIfRetained,
		LockWait:       f.lockWait,
		HealthInterval: healthInterval,
		Client:         watch.Client(),
	})
	if err != nil {
		if sig := watch.Signal(); sig != 0 {
			return &exitError{code: signalExitCode(sig), err: err}
		}
		return err
	}
	if err := e.report(res.Report()); err != nil {
		return err
	}
	if res.NotRetained != nil {
		return &exitError{code: ExitNotRetained}
	}
	return nil
}
