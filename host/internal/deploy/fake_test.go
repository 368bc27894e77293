package deploy

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"coop/host/internal/engine"
	"coop/host/internal/proxy"
)

// fakeContainer is a container as the fake engine keeps it.
type fakeContainer struct {
	state  string // created, running, exited
	labels map[string]string
	image  string
	env    []string
	mounts []engine.Mount
}

// fakeHost is an in-memory engine and proxy: containers by name, images, the proxy's routes.
// Every change is appended to ops, so tests can say what a deploy did and in which order. It
// models the engine's rules the deploy relies on (names are unique, a rename needs the new name
// free, a missing container is an error for start and rename but not for stop and remove); the
// integration test (test/integration/agent.test.ts) holds the real engine to the same steps.
type fakeHost struct {
	mu         sync.Mutex
	containers map[string]*fakeContainer
	images     map[string]bool
	routes     map[string]string // service -> target
	proxyState string
	ops        []string

	pullErrs     []error           // successive pull results (nil: success)
	migrateCode  int               // exit code of a one-off
	migrateOut   string            // its output
	unhealthy    map[string]bool   // images whose slot never becomes healthy
	execRunning  map[string][]bool // exec id -> successive answers of ExecRunning
	deployHook   func()            // runs when the proxy is asked to switch
	deployments  []proxy.Deployment
	inspectCalls int
	down         bool       // the engine went away: Ping fails
	gone         chan error // its event stream, which ends when it went away (see restart)
}

func newFakeHost() *fakeHost {
	return &fakeHost{
		containers:  map[string]*fakeContainer{},
		images:      map[string]bool{},
		routes:      map[string]string{},
		proxyState:  "running",
		unhealthy:   map[string]bool{},
		execRunning: map[string][]bool{},
	}
}

func (f *fakeHost) op(format string, args ...any) {
	f.ops = append(f.ops, fmt.Sprintf(format, args...))
}

// mutations are the ops that changed something (not the looks).
func (f *fakeHost) mutations() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.ops...)
}

func notFound(what string) error { return fmt.Errorf("%s: %w", what, engine.ErrNotFound) }

func (f *fakeHost) ListByLabel(_ context.Context, label, value string) ([]engine.Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []engine.Container
	for name, c := range f.containers {
		if c.labels[label] == value {
			out = append(out, engine.Container{Name: name, State: c.state, Release: c.labels[LabelRelease], Image: c.image})
		}
	}
	return out, nil
}

func (f *fakeHost) Inspect(_ context.Context, name string) (engine.State, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inspectCalls++
	if name == proxy.Container {
		if f.proxyState == "" {
			return engine.State{}, notFound("no such container " + name)
		}
		return engine.State{Running: f.proxyState == "running", Status: f.proxyState}, nil
	}
	c, ok := f.containers[name]
	if !ok {
		return engine.State{}, notFound("no such container " + name)
	}
	st := engine.State{Running: c.state == "running", Status: c.state, ExitCode: 0, Image: c.image, Labels: c.labels}
	if st.Running {
		st.IPs, st.StartedAt = map[string]string{"coop": "192.0.2.10"}, "2026-12-01T12:00:00Z"
	}
	return st, nil
}

func (f *fakeHost) Create(_ context.Context, s engine.Spec) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.containers[s.Name]; ok {
		return fmt.Errorf("creating %s: name in use", s.Name)
	}
	if !f.images[s.Image] {
		return notFound("no such image " + s.Image)
	}
	f.containers[s.Name] = &fakeContainer{state: "created", labels: s.Labels, image: s.Image, env: s.Env, mounts: s.Mounts}
	f.op("create %s %s", s.Name, s.Image)
	return nil
}

func (f *fakeHost) Start(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[name]
	if !ok {
		return notFound("no such container " + name)
	}
	c.state = "running"
	f.op("start %s", name)
	return nil
}

func (f *fakeHost) Stop(_ context.Context, name string, timeout time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.containers[name]; ok {
		c.state = "exited"
		f.op("stop %s %s", name, timeout)
	}
	return nil
}

func (f *fakeHost) Remove(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.containers[name]; ok {
		delete(f.containers, name)
		f.op("remove %s", name)
	}
	return nil
}

func (f *fakeHost) Rename(_ context.Context, from, to string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[from]
	if !ok {
		return notFound("no such container " + from)
	}
	if _, taken := f.containers[to]; taken {
		return fmt.Errorf("renaming %s: %s is in use", from, to)
	}
	delete(f.containers, from)
	f.containers[to] = c
	f.op("rename %s %s", from, to)
	return nil
}

func (f *fakeHost) RunToCompletion(_ context.Context, s engine.Spec) (int, []byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.containers[s.Name]; ok {
		return 0, nil, fmt.Errorf("creating %s: name in use", s.Name)
	}
	f.op("run %s %s %s", s.Name, s.Image, strings.Join(s.Cmd, " "))
	return f.migrateCode, []byte(f.migrateOut), nil
}

func (f *fakeHost) Logs(_ context.Context, name string, tail int) ([]byte, error) {
	return []byte("GET /health 503\n"), nil
}

func (f *fakeHost) ImagePresent(_ context.Context, ref string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.images[ref], nil
}

func (f *fakeHost) Pull(ctx context.Context, ref string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.op("pull %s", ref)
	if len(f.pullErrs) > 0 {
		err := f.pullErrs[0]
		f.pullErrs = f.pullErrs[1:]
		if err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	f.images[ref] = true
	return nil
}

func (f *fakeHost) RepoDigests(context.Context) (map[string]bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]bool{}
	for k := range f.images {
		out[k] = true
	}
	return out, nil
}

func (f *fakeHost) RemoveImage(_ context.Context, ref string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.containers {
		if c.image == ref {
			return fmt.Errorf("image %s is in use", ref)
		}
	}
	delete(f.images, ref)
	f.op("rmi %s", ref)
	return nil
}

func (f *fakeHost) ExecRunning(_ context.Context, id string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	answers := f.execRunning[id]
	if len(answers) == 0 {
		return false, nil
	}
	f.execRunning[id] = answers[1:]
	return answers[0], nil
}

// Gone is the engine's event stream ending (internal/engine: Gone).
func (f *fakeHost) Gone(context.Context) <-chan error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gone == nil {
		f.gone = make(chan error, 1)
	}
	return f.gone
}

// restart: the engine went away and is back already (its supervisor started it again): the
// event stream ended, and Ping answers.
func (f *fakeHost) restart() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gone != nil {
		f.gone <- fmt.Errorf("unexpected EOF")
	}
}

func (f *fakeHost) Ping(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return fmt.Errorf("asking the Docker engine: %w", engine.ErrEngineDown)
	}
	return nil
}

// Proxy.

func (f *fakeHost) Routes(context.Context) ([]proxy.Route, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []proxy.Route
	for s, t := range f.routes {
		out = append(out, proxy.Route{Service: s, Targets: []string{t}})
	}
	return out, nil
}

func (f *fakeHost) Deploy(_ context.Context, d proxy.Deployment, started func(string) error) error {
	if err := started("exec-1"); err != nil {
		return err
	}
	if f.deployHook != nil {
		f.deployHook()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deployments = append(f.deployments, d)
	name, _, _ := strings.Cut(d.Target, ":")
	c, ok := f.containers[name]
	if !ok || c.state != "running" || f.unhealthy[c.image] {
		return &proxy.RefusedError{ExitCode: 1, LastLine: "Error: target failed to become healthy within configured timeout"}
	}
	f.routes[d.Service] = d.Target
	f.op("switch %s %s", d.Service, d.Target)
	return nil
}

// fakeRetirer records what it was asked to retire, and does it at once.
type fakeRetirer struct {
	host  *fakeHost
	calls []string
}

func (r *fakeRetirer) Retire(stop string, timeout time.Duration, remove string) (int, error) {
	r.calls = append(r.calls, fmt.Sprintf("stop=%s timeout=%s remove=%s", stop, timeout, remove))
	ctx := context.Background()
	if stop != "" {
		_ = r.host.Stop(ctx, stop, timeout)
	}
	if remove != "" {
		_ = r.host.Remove(ctx, remove)
	}
	return 4242, nil
}
