// Package proxy is kamal-proxy as the agent drives it: the container that runs it, its commands
// (deploy, remove, stop, resume, list) run on the host by a copy of its binary through its
// command socket when the image lets the socket be reached, else inside the container through
// the engine API's exec, and its routes read from the JSON state file kamal-proxy keeps (copied
// out through the API), never from the table `kamal-proxy list` prints for people.
package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"coop/host/internal/engine"
	"coop/host/internal/flock"
	"coop/host/internal/procfs"
	"coop/host/internal/release"
)

const (
	// Container is the proxy's container name on every host.
	Container = "coop-proxy"
	// StateVolume keeps the proxy's routes and certificates across restarts and upgrades.
	StateVolume = "coop-proxy-state"
	// StateDir is where kamal-proxy keeps its state: $HOME/.config/kamal-proxy
	// (server.Config.dataDirectory in kamal-proxy), HOME being /home/kamal-proxy in its image.
	StateDir = "/home/kamal-proxy/.config/kamal-proxy"
	// StateFile is kamal-proxy's saved state (server.Config.StatePath): a JSON list of its
	// services, rewritten after every deploy and remove, and read back when it starts.
	StateFile = StateDir + "/kamal-proxy.state"
	// Binary is kamal-proxy's executable inside its image.
	Binary = "/kamal-proxy"

	// SocketDirLabel, on a proxy image, names the directory in it where kamal-proxy puts its
	// command socket (the image's XDG_RUNTIME_DIR). It also promises that the socket can be
	// connected to by whoever reaches that directory: the image's entrypoint clears the umask,
	// so the socket is not only its owner's (root's). The proxy container then gets the host's
	// run directory mounted there, which only the deploy user can enter (mode 0700).
	SocketDirLabel = "coop.proxy.socket-dir"
	// socketName is the socket's name in that directory (server.Config.SocketPath).
	socketName = "kamal-proxy.sock"
	// runDirName is the run directory, in the host's proxy directory.
	runDirName = "run"
	// clientName is the copy of the proxy's binary, in the host's proxy directory, that runs
	// kamal-proxy's commands on the host (about 25 ms a command without load, against 250 ms
	// for a docker exec, which starts a process inside the container).
	clientName = "kamal-proxy"
	// dialTimeout bounds the check that the socket answers.
	dialTimeout = time.Second

	// AnswerTimeout is how long a started proxy has to answer on its command socket.
	AnswerTimeout = 10 * time.Second
	// answerPoll is how often it is asked meanwhile.
	answerPoll = 100 * time.Millisecond
	// stateReadAttempts: kamal-proxy rewrites its state file in place (truncate, then write),
	// so a read can catch it half written; it is read again, a little later.
	stateReadAttempts = 5
	stateReadPause    = 50 * time.Millisecond
)

// Engine is what the proxy needs of the Docker engine.
type Engine interface {
	Exec(ctx context.Context, name string, argv []string, started func(id string) error) (engine.ExecResult, error)
	CopyFile(ctx context.Context, name, path string) ([]byte, error)
}

// Stater is an Engine that can look at a file's size and modification time cheaply.
type Stater interface {
	StatFile(ctx context.Context, name, path string) (engine.FileStat, error)
}

// Proxy is the proxy container on this host.
type Proxy struct {
	Engine Engine
	// Dir, when set, is the host's proxy directory (ROOT/proxy): its run directory is mounted
	// where the proxy's image keeps its command socket (SocketDirLabel), and its kamal-proxy is
	// a copy of the proxy's binary. Commands go through them when both are there and the socket
	// answers; otherwise through a docker exec.
	Dir string
	// Cache, when set, is a file where the state file's last copy is kept with its size and
	// modification time: as long as the proxy's file still has both, the copy is read instead
	// of copying the file out of the container again (the copy is most of a release's own
	// time). Only a copy made well after the file's last change is trusted, so that a rewrite
	// within the file system's timestamp granularity is never missed.
	Cache string
	// Lock, when set, is the host's lock file of the proxy's routes (flock(2)). kamal-proxy
	// saves its state after every command that changes a route (deploy, remove, stop, pause,
	// resume...) by truncating the file and writing it, without a lock of its own: two saves at
	// once leave one list followed by the tail of the other. Every such command is run holding
	// it alone, and the state file is read holding it shared, so that a save is whole before
	// another starts and before it is read. Every agent on the host must use the same file.
	Lock string
}

// cacheSettle is how long after the state file's last change a copy of it may be trusted.
const cacheSettle = 50 * time.Millisecond

// cachedState is the Cache file.
type cachedState struct {
	Size    int64     `json:"size"`
	Mtime   time.Time `json:"mtime"`
	Content string    `json:"content"`
}

// Route is one kamal-proxy service: the hosts it serves and the targets it sends them to.
type Route struct {
	Service string   `json:"service"`
	Hosts   []string `json:"hosts"`
	Targets []string `json:"targets"`
	TLS     bool     `json:"tls"`
}

// savedService is the part of kamal-proxy's saved service (server.marshalledService) the agent
// reads. Older kamal-proxy versions saved one target and the hosts at the top level.
type savedService struct {
	Name    string `json:"name"`
	Options struct {
		Hosts      []string `json:"hosts"`
		TLSEnabled bool     `json:"tls_enabled"`
	} `json:"options"`
	ActiveTargets []string `json:"active_targets"`

	LegacyActiveTarget string   `json:"active_target"`
	LegacyHosts        []string `json:"hosts"`
}

// damagedState is what a state file that is not one JSON list is said to be.
const damagedState = "kamal-proxy's state file is damaged: two of its saves overlapped (kamal-proxy rewrites it in place, unlocked; " +
	"another program changed a route at the same time); the next route change on this host rewrites it whole"

// ParseState reads kamal-proxy's saved state into routes, in the file's order.
func ParseState(b []byte) ([]Route, error) {
	var services []savedService
	if err := json.Unmarshal(b, &services); err != nil {
		return nil, fmt.Errorf("kamal-proxy's state is not the JSON list it writes: %w", err)
	}
	routes := make([]Route, 0, len(services))
	for _, s := range services {
		r := Route{Service: s.Name, Hosts: s.Options.Hosts, Targets: s.ActiveTargets, TLS: s.Options.TLSEnabled}
		if len(r.Targets) == 0 && s.LegacyActiveTarget != "" {
			r.Targets = []string{s.LegacyActiveTarget}
		}
		if len(r.Hosts) == 0 {
			r.Hosts = s.LegacyHosts
		}
		if r.Hosts == nil {
			r.Hosts = []string{}
		}
		if r.Targets == nil {
			r.Targets = []string{}
		}
		routes = append(routes, r)
	}
	return routes, nil
}

// Routes reads the proxy's routes from its state file. A proxy that has never saved a route
// has no file: no routes. A file that is not one JSON list is refused, never guessed at.
func (p *Proxy) Routes(ctx context.Context) ([]Route, error) {
	if p.Lock != "" {
		l, err := flock.Acquire(ctx, p.Lock, flock.Shared)
		if err != nil {
			return nil, fmt.Errorf("reading the proxy's routes: %w", err)
		}
		defer l.Release()
	}
	stater, _ := p.Engine.(Stater)
	if p.Cache == "" {
		stater = nil
	}
	var before engine.FileStat
	if stater != nil {
		st, err := stater.StatFile(ctx, Container, StateFile)
		if err == nil {
			before = st
			if routes, ok := p.cached(st); ok {
				return routes, nil
			}
		}
	}
	routes, content, err := p.copyRoutes(ctx)
	if err != nil || stater == nil || before.Mtime.IsZero() {
		return routes, err
	}
	// Kept only when the file did not change while it was copied, and settled before.
	if after, err := stater.StatFile(ctx, Container, StateFile); err == nil && after == before && time.Since(after.Mtime) > cacheSettle {
		p.keep(cachedState{Size: after.Size, Mtime: after.Mtime, Content: string(content)})
	}
	return routes, nil
}

// cached is the routes of the cached copy, when the file still has its size and time.
func (p *Proxy) cached(st engine.FileStat) ([]Route, bool) {
	b, err := os.ReadFile(p.Cache)
	if err != nil {
		return nil, false
	}
	var c cachedState
	if json.Unmarshal(b, &c) != nil || c.Size != st.Size || !c.Mtime.Equal(st.Mtime) || int64(len(c.Content)) != c.Size {
		return nil, false
	}
	routes, err := ParseState([]byte(c.Content))
	return routes, err == nil
}

// keep writes the cache whole (a temporary file renamed over it); a failure only costs a copy.
func (p *Proxy) keep(c cachedState) {
	b, err := json.Marshal(c)
	if err != nil {
		return
	}
	tmp, err := os.CreateTemp(filepath.Dir(p.Cache), "."+filepath.Base(p.Cache)+".*")
	if err != nil {
		return
	}
	_, werr := tmp.Write(b)
	cerr := tmp.Close()
	if werr != nil || cerr != nil || os.Rename(tmp.Name(), p.Cache) != nil {
		os.Remove(tmp.Name())
	}
}

// copyRoutes copies the state file out of the proxy container and reads it.
func (p *Proxy) copyRoutes(ctx context.Context) ([]Route, []byte, error) {
	var lastErr error
	for i := 0; i < stateReadAttempts; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return nil, nil, context.Cause(ctx)
			case <-time.After(stateReadPause):
			}
		}
		b, err := p.Engine.CopyFile(ctx, Container, StateFile)
		if errors.Is(err, engine.ErrNoContainer) {
			return nil, nil, fmt.Errorf("the proxy %s is not on this host (host-up starts it): %w", Container, err)
		}
		if errors.Is(err, engine.ErrNotFound) {
			return []Route{}, nil, nil
		}
		if err != nil {
			return nil, nil, err
		}
		if len(bytes.TrimSpace(b)) == 0 {
			lastErr = errors.New("kamal-proxy's state file is empty (being rewritten)")
			continue
		}
		routes, err := ParseState(b)
		if err == nil {
			return routes, b, nil
		}
		lastErr = fmt.Errorf("%s: %w", damagedState, err)
	}
	return nil, nil, lastErr
}

// Service is the proxy service of a co-op.
func Service(coopID string) string { return "coop-" + coopID }

// Target is the proxy target of a container on the shared network.
func Target(containerName string, port int) string {
	return containerName + ":" + strconv.Itoa(port)
}

// LiveTarget is the target the proxy sends the service to, or "" when it has no route for it.
func LiveTarget(routes []Route, service string) string {
	for _, r := range routes {
		if r.Service == service && len(r.Targets) > 0 {
			return r.Targets[0]
		}
	}
	return ""
}

// Deployment is one `kamal-proxy deploy`: the proxy polls Target's health path every
// HealthInterval, switches the service to it atomically once it answers 200 (or gives up after
// DeployTimeout), then lets the old target's in-flight requests finish (DrainTimeout).
type Deployment struct {
	Service        string
	Target         string
	HealthPath     string
	HealthInterval time.Duration
	DeployTimeout  time.Duration
	DrainTimeout   time.Duration
	Hosts          []string
	TLS            bool
}

// Args is the deployment as kamal-proxy's arguments, from the verb on (Command runs them,
// through exec or the host's client: no shell).
func (d Deployment) Args() []string {
	args := []string{"deploy", d.Service,
		"--target", d.Target,
		"--health-check-path", d.HealthPath,
		"--health-check-interval", d.HealthInterval.String(),
		"--deploy-timeout", d.DeployTimeout.String(),
		"--drain-timeout", d.DrainTimeout.String(),
	}
	for _, h := range d.Hosts {
		args = append(args, "--host", h)
	}
	if d.TLS {
		args = append(args, "--tls")
	} else {
		args = append(args, "--tls-redirect=false")
	}
	return args
}

// RefusedError is a kamal-proxy command that exited non-zero, with its last line of output.
type RefusedError struct {
	ExitCode int
	LastLine string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("kamal-proxy refused (exit %d): %s", e.ExitCode, e.LastLine)
}

// Deploy runs the deployment and waits for it. started gets a handle of the command once it is
// known (RunningHandle says whether it still runs): a docker exec's id, before it starts, or
// the host process's ClientHandle, once it has. The error of a refused deployment ends with
// kamal-proxy's last line of output.
func (p *Proxy) Deploy(ctx context.Context, d Deployment, started func(handle string) error) error {
	res, err := p.Command(ctx, d.Args(), started)
	if err != nil {
		return err
	}
	if res.ExitCode != 0 {
		return &RefusedError{ExitCode: res.ExitCode, LastLine: LastLine(res.Output)}
	}
	return nil
}

// Remove removes a service's route; a service the proxy does not have is no error.
func (p *Proxy) Remove(ctx context.Context, service string) error {
	res, err := p.Command(ctx, []string{"remove", service}, nil)
	if err != nil {
		return err
	}
	if res.ExitCode != 0 && !strings.Contains(string(res.Output), "service not found") {
		return &RefusedError{ExitCode: res.ExitCode, LastLine: LastLine(res.Output)}
	}
	return nil
}

// WaitAnswering waits until kamal-proxy answers on its command socket (`kamal-proxy list`
// exits 0; its output, a table for people, is not read), up to AnswerTimeout.
func (p *Proxy) WaitAnswering(ctx context.Context) error {
	deadline := time.Now().Add(AnswerTimeout)
	for {
		res, err := p.Command(ctx, []string{"list"}, nil)
		if err == nil && res.ExitCode == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer within %s", Container, AnswerTimeout)
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(answerPoll):
		}
	}
}

// Run runs `kamal-proxy ARGS...` (stop, resume: a verb that only answers) and says why it was
// refused, with kamal-proxy's last line of output.
func (p *Proxy) Run(ctx context.Context, args ...string) error {
	res, err := p.Command(ctx, args, nil)
	if err != nil {
		return err
	}
	if res.ExitCode != 0 {
		return &RefusedError{ExitCode: res.ExitCode, LastLine: LastLine(res.Output)}
	}
	return nil
}

// Command runs `kamal-proxy ARGS...` and waits for it: on the host, through the command socket,
// when it can (Direct), else inside the proxy container. started is as for Deploy. A context
// that ends first returns its error and leaves the command running, as an exec would.
//
// A command that changes routes (every verb but list) runs holding the host's Lock alone. Run
// on the host, the command's process shares the lock and holds it until it exits, even when ctx
// ends first or this process dies; through exec, the lock goes when this call returns.
func (p *Proxy) Command(ctx context.Context, args []string, started func(handle string) error) (engine.ExecResult, error) {
	var held *flock.Lock
	if p.Lock != "" && ChangesRoutes(args) {
		l, err := flock.Acquire(ctx, p.Lock, flock.Exclusive)
		if err != nil {
			return engine.ExecResult{}, fmt.Errorf("waiting for another route change on this host: %w", err)
		}
		held = l
	}
	if client, ok := p.Direct(); ok {
		return runClient(ctx, client, p.RunDir(), args, started, held)
	}
	if held != nil {
		defer held.Release()
	}
	return p.Engine.Exec(ctx, Container, append([]string{Binary}, args...), started)
}

// ChangesRoutes says whether kamal-proxy saves its state after the command ARGS: every verb but
// list (kamal-proxy's router saves after deploy, remove, pause, stop, resume and the rollout's).
func ChangesRoutes(args []string) bool {
	return len(args) > 0 && args[0] != "list"
}

// RunDir is the host's run directory, mounted where the image keeps its command socket.
func (p *Proxy) RunDir() string { return filepath.Join(p.Dir, runDirName) }

// Client is the host's copy of the proxy's binary.
func (p *Proxy) Client() string { return filepath.Join(p.Dir, clientName) }

// Direct is the host's copy of the proxy's binary, when it is there and the proxy's command
// socket answers in the run directory.
func (p *Proxy) Direct() (string, bool) {
	if p.Dir == "" {
		return "", false
	}
	if st, err := os.Stat(p.Client()); err != nil || !st.Mode().IsRegular() {
		return "", false
	}
	c, err := net.DialTimeout("unix", filepath.Join(p.RunDir(), socketName), dialTimeout)
	if err != nil {
		return "", false
	}
	c.Close()
	return p.Client(), true
}

// ClientBinary is the proxy container's kamal-proxy binary, for the host's copy (Client):
// host-up writes it whenever it (re)creates the proxy, so that the copy speaks the running
// proxy's protocol.
func (p *Proxy) ClientBinary(ctx context.Context) ([]byte, error) {
	b, err := p.Engine.CopyFile(ctx, Container, Binary)
	if err != nil {
		return nil, fmt.Errorf("copying kamal-proxy's binary to the host: %w", err)
	}
	return b, nil
}

// RemoveClient removes the host's copy of the proxy's binary (before the proxy is recreated:
// until the new copy is in place, commands go through exec).
func (p *Proxy) RemoveClient() error {
	if p.Dir == "" {
		return nil
	}
	if err := os.Remove(p.Client()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// ClientHandle is the handle of a command run on the host: its pid and start time.
func ClientHandle(pid int, start uint64) string { return fmt.Sprintf("pid %d %d", pid, start) }

// RunningHandle says whether the command a handle names still runs: a ClientHandle's process,
// or the exec whose id it is (execRunning).
func RunningHandle(ctx context.Context, handle string, execRunning func(context.Context, string) (bool, error)) (bool, error) {
	var pid int
	var start uint64
	if n, err := fmt.Sscanf(handle, "pid %d %d", &pid, &start); err == nil && n == 2 {
		return procfs.Alive(pid, start), nil
	}
	return execRunning(ctx, handle)
}

// runClient runs the host's kamal-proxy with the run directory as its XDG_RUNTIME_DIR (where it
// looks for the socket) and nothing else of this process's environment. It runs in a process
// group of its own: like an exec inside the container, it goes on if the agent is killed. A
// held lock is handed to it (an inherited descriptor), so that it holds the lock until it exits;
// it is released once the command has exited, or left to the command when ctx ends first.
func runClient(ctx context.Context, client, runDir string, args []string, started func(handle string) error, held *flock.Lock) (engine.ExecResult, error) {
	cmd := exec.Command(client, args...)
	cmd.Env = []string{"XDG_RUNTIME_DIR=" + runDir}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if held != nil {
		cmd.ExtraFiles = []*os.File{held.File()}
	}
	if err := cmd.Start(); err != nil {
		if held != nil {
			held.Release()
		}
		return engine.ExecResult{}, fmt.Errorf("running %s: %w", client, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var markErr error
	if started != nil {
		start, _ := procfs.StartTime(cmd.Process.Pid)
		markErr = started(ClientHandle(cmd.Process.Pid, start))
	}
	select {
	case <-ctx.Done():
		if held != nil {
			held.Close()
		}
		return engine.ExecResult{}, context.Cause(ctx)
	case err := <-done:
		if held != nil {
			held.Release()
		}
		if markErr != nil {
			return engine.ExecResult{Output: out.Bytes()}, markErr
		}
		var exit *exec.ExitError
		if errors.As(err, &exit) && exit.ExitCode() >= 0 {
			return engine.ExecResult{ExitCode: exit.ExitCode(), Output: out.Bytes()}, nil
		}
		if err != nil {
			return engine.ExecResult{Output: out.Bytes()}, fmt.Errorf("running %s %s: %w", client, args[0], err)
		}
		return engine.ExecResult{Output: out.Bytes()}, nil
	}
}

// LastLine is the last non-empty line of a command's output, without terminal colour codes.
func LastLine(out []byte) string {
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(stripANSI(lines[i])); l != "" {
			return l
		}
	}
	return ""
}

func stripANSI(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == 0x1b && i+1 < len(s) && s[i+1] == '[' {
			j := i + 2
			for j < len(s) && (s[j] == ';' || (s[j] >= '0' && s[j] <= '9')) {
				j++
			}
			if j < len(s) {
				i = j
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ConfigHash is what the proxy container runs with, as a label value: host-up recreates the
// proxy only when it changes. It is the same hash coopctl wrote (sha256 of the lines image,
// network, bind address, HTTP port, HTTPS port; 16 hex digits), so upgrading the tool does not
// restart the proxy.
func ConfigHash(h release.Host) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\n%s\n%s\n%d\n%d\n", h.Proxy.Image, h.Network, h.Proxy.BindAddress, h.Proxy.HTTPPort, h.Proxy.HTTPSPort))
	return hex.EncodeToString(sum[:])[:16]
}

// ConfigLabel holds ConfigHash on the proxy container.
const ConfigLabel = "coop.config"

// ContainerSpec is the proxy container for host h: restarted unless stopped, on the shared
// network, its ports published on the bind address, its state in a volume. socketDir is where
// the image keeps its command socket (SocketDirLabel) and runDir the host directory mounted
// there; either "" mounts nothing (commands then go through exec).
func ContainerSpec(h release.Host, managedLabel, socketDir, runDir string) engine.Spec {
	spec := engine.Spec{
		Name:    Container,
		Image:   h.Proxy.Image,
		Network: h.Network,
		Ports: []engine.Port{
			{HostIP: h.Proxy.BindAddress, HostPort: h.Proxy.HTTPPort, ContainerPort: 80},
			{HostIP: h.Proxy.BindAddress, HostPort: h.Proxy.HTTPSPort, ContainerPort: 443},
		},
		Mounts:  []engine.Mount{{Volume: StateVolume, Target: StateDir}},
		Labels:  map[string]string{managedLabel: "true", ConfigLabel: ConfigHash(h)},
		Restart: true,
	}
	if socketDir != "" && runDir != "" {
		spec.Mounts = append(spec.Mounts, engine.Mount{HostDir: runDir, Target: socketDir})
	}
	return spec
}
