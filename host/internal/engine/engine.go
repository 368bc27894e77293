// Package engine is the Docker engine as the agent uses it, through the engine's API
// (github.com/docker/docker/client): no `docker` process is run. Each method is one thing a
// release does to a container, an image, a network or a volume, with errors that name it.
package engine

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
)

// ErrNotFound is wrapped by errors about a container, image, file or exec that is not there.
var ErrNotFound = errors.New("not found")

// ErrNoContainer is wrapped by errors about a container that is not there (it wraps ErrNotFound).
var ErrNoContainer = fmt.Errorf("no such container: %w", ErrNotFound)

// ErrEngineDown is wrapped by errors that came from the engine not answering.
var ErrEngineDown = errors.New("the Docker engine is not answering")

// Engine is a connection to the Docker engine.
type Engine struct {
	c *client.Client
	// root is ROOT, whose registries/ holds the stacks' registry logins ("": only the deploy
	// user's own docker login).
	root string
}

// Connect reaches the engine the way the docker CLI does (DOCKER_HOST, else the local socket),
// speaking the newest API version both sides know. Pulls log in with the registry logins under
// root (see LoginsDir), then the deploy user's own.
func Connect(root string) (*Engine, error) {
	c, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("connecting to the Docker engine: %w", err)
	}
	return &Engine{c: c, root: root}, nil
}

// Close releases the connection.
func (e *Engine) Close() error { return e.c.Close() }

// wrap marks an engine error as ErrNotFound or ErrEngineDown where it is one.
func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	msg := fmt.Sprintf(format, args...)
	switch {
	case cerrdefs.IsNotFound(err):
		return fmt.Errorf("%s: %w (%w)", msg, ErrNotFound, err)
	case client.IsErrConnectionFailed(err):
		return fmt.Errorf("%s: %w (%w)", msg, ErrEngineDown, err)
	}
	return fmt.Errorf("%s: %w", msg, err)
}

// Container is one container as a listing shows it.
type Container struct {
	Name    string
	State   string // created, running, exited, ...
	Release string // the coop.release label
	Image   string
}

// Running: the container is running (or restarting, which is running as far as a slot goes).
func (c Container) Running() bool { return c.State == "running" || c.State == "restarting" }

// ListByLabel lists every container, running or not, that carries label=value.
func (e *Engine) ListByLabel(ctx context.Context, label, value string) ([]Container, error) {
	list, err := e.c.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", label+"="+value))})
	if err != nil {
		return nil, wrap(err, "listing containers with %s=%s", label, value)
	}
	out := make([]Container, 0, len(list))
	for _, c := range list {
		if len(c.Names) == 0 {
			continue
		}
		out = append(out, Container{
			Name:    strings.TrimPrefix(c.Names[0], "/"),
			State:   string(c.State),
			Release: c.Labels["coop.release"],
			Image:   c.Image,
		})
	}
	return out, nil
}

// State is what the agent reads from a container's inspection.
type State struct {
	Running  bool
	Status   string // running, exited, ...
	ExitCode int
	Image    string // as it was started (REPO@sha256:...)
	Labels   map[string]string
	// StartedAt is when it last started (RFC 3339), empty if never.
	StartedAt string
	// IPs are its addresses by network name.
	IPs map[string]string
}

// Inspect reads a container's state; the error wraps ErrNotFound when there is none.
func (e *Engine) Inspect(ctx context.Context, name string) (State, error) {
	c, err := e.c.ContainerInspect(ctx, name)
	if err != nil {
		return State{}, wrap(err, "inspecting %s", name)
	}
	s := State{}
	if c.State != nil {
		s.Running, s.Status, s.ExitCode = c.State.Running, string(c.State.Status), c.State.ExitCode
		if !strings.HasPrefix(c.State.StartedAt, "0001-") {
			s.StartedAt = c.State.StartedAt
		}
	}
	if c.Config != nil {
		s.Image, s.Labels = c.Config.Image, c.Config.Labels
	}
	if c.NetworkSettings != nil {
		s.IPs = map[string]string{}
		for name, n := range c.NetworkSettings.Networks {
			if n != nil && n.IPAddress != "" {
				s.IPs[name] = n.IPAddress
			}
		}
	}
	return s, nil
}

// StreamLogs copies a container's log (stdout and stderr, in order) to w: from `since` (a
// duration such as 10m, or empty for all), and on as it grows while `follow`, until ctx ends.
func (e *Engine) StreamLogs(ctx context.Context, name, since string, follow bool, w io.Writer) error {
	rc, err := e.c.ContainerLogs(ctx, name, container.LogsOptions{ShowStdout: true, ShowStderr: true, Since: since, Follow: follow})
	if err != nil {
		return wrap(err, "reading the log of %s", name)
	}
	defer rc.Close()
	if _, err := stdcopy.StdCopy(w, w, rc); err != nil && ctx.Err() == nil {
		return wrap(err, "reading the log of %s", name)
	}
	return nil
}

// Create creates a container from spec (not started).
func (e *Engine) Create(ctx context.Context, spec Spec) error {
	cfg, host, net := spec.configs()
	_, err := e.c.ContainerCreate(ctx, cfg, host, net, nil, spec.Name)
	return wrap(err, "creating %s", spec.Name)
}

// Start starts a created or stopped container.
func (e *Engine) Start(ctx context.Context, name string) error {
	return wrap(e.c.ContainerStart(ctx, name, container.StartOptions{}), "starting %s", name)
}

// Stop stops a container, killing it after timeout; a stopped or missing one is no error.
func (e *Engine) Stop(ctx context.Context, name string, timeout time.Duration) error {
	secs := int(timeout.Round(time.Second) / time.Second)
	err := e.c.ContainerStop(ctx, name, container.StopOptions{Timeout: &secs})
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	return wrap(err, "stopping %s", name)
}

// Remove removes a container, running or not (docker rm --force); a missing one is no error.
func (e *Engine) Remove(ctx context.Context, name string) error {
	err := e.c.ContainerRemove(ctx, name, container.RemoveOptions{Force: true})
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	return wrap(err, "removing %s", name)
}

// Rename renames a container.
func (e *Engine) Rename(ctx context.Context, from, to string) error {
	return wrap(e.c.ContainerRename(ctx, from, to), "renaming %s to %s", from, to)
}

// RunToCompletion creates and starts spec, waits for it to exit, and returns its exit code and
// its output (stdout and stderr as they came). The container is removed afterwards, whatever
// happened. It is how one-off containers (migrations) run.
func (e *Engine) RunToCompletion(ctx context.Context, spec Spec) (int, []byte, error) {
	if err := e.Create(ctx, spec); err != nil {
		return 0, nil, err
	}
	defer func() {
		// The one-off goes even when ctx is done: a fresh context for the clean-up.
		cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = e.Remove(cleanup, spec.Name)
	}()
	// Waiting for the next exit is registered before the start, so a quick exit is not missed.
	waitCh, errCh := e.c.ContainerWait(ctx, spec.Name, container.WaitConditionNextExit)
	if err := e.Start(ctx, spec.Name); err != nil {
		return 0, nil, err
	}
	var code int
	select {
	case res := <-waitCh:
		if res.Error != nil && res.Error.Message != "" {
			return 0, nil, fmt.Errorf("waiting for %s: %s", spec.Name, res.Error.Message)
		}
		code = int(res.StatusCode)
	case err := <-errCh:
		return 0, nil, wrap(err, "waiting for %s", spec.Name)
	}
	out, err := e.Logs(ctx, spec.Name, 0)
	return code, out, err
}

// Logs returns a container's log, stdout and stderr as they came; tail > 0 keeps the last lines.
func (e *Engine) Logs(ctx context.Context, name string, tail int) ([]byte, error) {
	opts := container.LogsOptions{ShowStdout: true, ShowStderr: true}
	if tail > 0 {
		opts.Tail = fmt.Sprint(tail)
	}
	rc, err := e.c.ContainerLogs(ctx, name, opts)
	if err != nil {
		return nil, wrap(err, "reading the log of %s", name)
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := stdcopy.StdCopy(&buf, &buf, rc); err != nil {
		return buf.Bytes(), wrap(err, "reading the log of %s", name)
	}
	return buf.Bytes(), nil
}

// ImagePresent: the image is on the host.
func (e *Engine) ImagePresent(ctx context.Context, ref string) (bool, error) {
	_, err := e.c.ImageInspect(ctx, ref)
	if cerrdefs.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, wrap(err, "inspecting image %s", ref)
	}
	return true, nil
}

// ImageLabels are the labels of an image on the host.
func (e *Engine) ImageLabels(ctx context.Context, ref string) (map[string]string, error) {
	in, err := e.c.ImageInspect(ctx, ref)
	if err != nil {
		return nil, wrap(err, "inspecting image %s", ref)
	}
	if in.Config == nil {
		return map[string]string{}, nil
	}
	return in.Config.Labels, nil
}

// pullMessage is one line of the engine's pull progress stream.
type pullMessage struct {
	Status      string `json:"status"`
	Error       string `json:"error"`
	ErrorDetail *struct {
		Message string `json:"message"`
	} `json:"errorDetail"`
}

// Pull pulls an image, with the deploy user's registry credentials when it has some.
func (e *Engine) Pull(ctx context.Context, ref string) error {
	auth, login := registryLogin(ref, loginFiles(e.root))
	rc, err := e.c.ImagePull(ctx, ref, image.PullOptions{RegistryAuth: auth})
	if err != nil {
		return refusal(wrap(err, "pulling %s %s", ref, login))
	}
	defer rc.Close()
	if err := readPullStream(rc, ref); err != nil {
		return refusal(fmt.Errorf("%w (%s)", err, login))
	}
	return nil
}

// ErrPullRefused is wrapped by a pull's error when the registry refused the login (or asked for
// one): trying again with the same login cannot succeed.
var ErrPullRefused = errors.New("the registry refused the pull")

// refusal marks err as ErrPullRefused when the registry's words say so (the engine passes them on
// as text: "unauthorized", "denied", "no basic auth credentials", "authentication required").
func refusal(err error) error {
	msg := strings.ToLower(err.Error())
	for _, w := range []string{"unauthorized", "denied", "no basic auth credentials", "authentication required"} {
		if strings.Contains(msg, w) {
			return fmt.Errorf("%w: %w", ErrPullRefused, err)
		}
	}
	return err
}

// String says how a pull reached the registry: as whom, or anonymously and how to log in.
func (l Login) String() string {
	if l.User != "" {
		return fmt.Sprintf("from %s as %s", l.Registry, l.User)
	}
	return fmt.Sprintf("from %s anonymously (no login for it: coop:registries names none)", l.Registry)
}

// readPullStream reads a pull's progress to its end; the pull failed if a message says so.
func readPullStream(r io.Reader, ref string) error {
	dec := json.NewDecoder(r)
	for {
		var m pullMessage
		if err := dec.Decode(&m); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("pulling %s: reading the engine's progress: %w", ref, err)
		}
		if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
			return fmt.Errorf("pulling %s: %s", ref, m.ErrorDetail.Message)
		}
		if m.Error != "" {
			return fmt.Errorf("pulling %s: %s", ref, m.Error)
		}
	}
}

// RepoDigests lists every REPO@sha256:... the host's images are known by.
func (e *Engine) RepoDigests(ctx context.Context) (map[string]bool, error) {
	list, err := e.c.ImageList(ctx, image.ListOptions{})
	if err != nil {
		return nil, wrap(err, "listing images")
	}
	out := map[string]bool{}
	for _, im := range list {
		for _, d := range im.RepoDigests {
			out[d] = true
		}
	}
	return out, nil
}

// RemoveImage removes an image (docker image rm); the engine refuses one a container uses.
func (e *Engine) RemoveImage(ctx context.Context, ref string) error {
	_, err := e.c.ImageRemove(ctx, ref, image.RemoveOptions{PruneChildren: true})
	return wrap(err, "removing image %s", ref)
}

// ExecResult is how a command run in a container ended.
type ExecResult struct {
	ExitCode int
	Output   []byte // stdout and stderr as they came
}

// Exec runs argv in a running container and waits for it. started, when not nil, is called
// with the exec's id once it is created and before it starts: the exec goes on inside the
// container if this process dies, and the id is how a later run finds out whether it still is.
func (e *Engine) Exec(ctx context.Context, name string, argv []string, started func(id string) error) (ExecResult, error) {
	created, err := e.c.ContainerExecCreate(ctx, name, container.ExecOptions{Cmd: argv, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return ExecResult{}, wrap(err, "running %s in %s", argv[0], name)
	}
	if started != nil {
		if err := started(created.ID); err != nil {
			return ExecResult{}, err
		}
	}
	resp, err := e.c.ContainerExecAttach(ctx, created.ID, container.ExecAttachOptions{})
	if err != nil {
		return ExecResult{}, wrap(err, "running %s in %s", argv[0], name)
	}
	defer resp.Close()
	var buf bytes.Buffer
	if _, err := stdcopy.StdCopy(&buf, &buf, resp.Reader); err != nil {
		return ExecResult{Output: buf.Bytes()}, wrap(err, "reading the output of %s in %s", argv[0], name)
	}
	// The output ends when the process does; its exit code is read once the engine has it.
	for i := 0; ; i++ {
		in, err := e.c.ContainerExecInspect(ctx, created.ID)
		if err != nil {
			return ExecResult{Output: buf.Bytes()}, wrap(err, "reading the exit code of %s in %s", argv[0], name)
		}
		if !in.Running || i == 100 {
			return ExecResult{ExitCode: in.ExitCode, Output: buf.Bytes()}, nil
		}
		select {
		case <-ctx.Done():
			return ExecResult{Output: buf.Bytes()}, context.Cause(ctx)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ExecRunning: the exec with this id is still running. An exec the engine does not know (it
// ended long ago, or the engine restarted) is not.
func (e *Engine) ExecRunning(ctx context.Context, id string) (bool, error) {
	in, err := e.c.ContainerExecInspect(ctx, id)
	if cerrdefs.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, wrap(err, "inspecting exec %s", id)
	}
	return in.Running, nil
}

// CopyFile reads one file out of a container (running or not), as `docker cp` does. The error
// wraps ErrNotFound when the file is not there, and ErrNoContainer too when the container is not.
func (e *Engine) CopyFile(ctx context.Context, name, path string) ([]byte, error) {
	rc, _, err := e.c.CopyFromContainer(ctx, name, path)
	if cerrdefs.IsNotFound(err) {
		// The file or the container: the engine says which only in words.
		if _, ierr := e.c.ContainerInspect(ctx, name); cerrdefs.IsNotFound(ierr) {
			return nil, fmt.Errorf("copying %s out of %s: %w", path, name, ErrNoContainer)
		}
	}
	if err != nil {
		return nil, wrap(err, "copying %s out of %s", path, name)
	}
	defer rc.Close()
	b, err := firstFileInTar(rc)
	if err != nil {
		return nil, fmt.Errorf("copying %s out of %s: %w", path, name, err)
	}
	return b, nil
}

// firstFileInTar returns the content of the first regular file in a tar stream.
func firstFileInTar(r io.Reader) ([]byte, error) {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, fmt.Errorf("no regular file in the archive: %w", ErrNotFound)
		}
		if err != nil {
			return nil, err
		}
		if h.Typeflag == tar.TypeReg {
			return io.ReadAll(tr)
		}
	}
}

// NetworkExists: a network of that name exists.
func (e *Engine) NetworkExists(ctx context.Context, name string) (bool, error) {
	_, err := e.c.NetworkInspect(ctx, name, network.InspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, wrap(err, "inspecting network %s", name)
	}
	return true, nil
}

// CreateNetwork creates a bridge network with labels.
func (e *Engine) CreateNetwork(ctx context.Context, name string, labels map[string]string) error {
	// The client asks the engine to refuse a duplicate name, but the engine's check is not
	// atomic: callers make sure that only one of them creates it (host-up's lock).
	_, err := e.c.NetworkCreate(ctx, name, network.CreateOptions{Labels: labels})
	return wrap(err, "creating network %s", name)
}

// RemoveNetwork removes a network; the engine refuses one that has containers attached.
func (e *Engine) RemoveNetwork(ctx context.Context, name string) error {
	return wrap(e.c.NetworkRemove(ctx, name), "removing network %s", name)
}

// RemoveVolume removes a volume; a missing one is no error.
func (e *Engine) RemoveVolume(ctx context.Context, name string) error {
	err := e.c.VolumeRemove(ctx, name, false)
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	return wrap(err, "removing volume %s", name)
}

// Ping asks the engine whether it answers; the error wraps ErrEngineDown when it does not.
func (e *Engine) Ping(ctx context.Context) error {
	_, err := e.c.Ping(ctx)
	return wrap(err, "asking the Docker engine")
}

// Gone opens the engine's event stream and returns a channel that gets one value when the
// stream ends: the engine went away (it stopped, crashed or restarted), or ctx is done. The
// events themselves are not read for anything else.
func (e *Engine) Gone(ctx context.Context) <-chan error {
	msgs, errs := e.c.Events(ctx, events.ListOptions{})
	out := make(chan error, 1)
	go func() {
		for {
			select {
			case <-msgs:
			case err := <-errs:
				if err == nil {
					err = io.EOF
				}
				out <- err
				return
			}
		}
	}()
	return out
}

// FileStat is a file's size and modification time.
type FileStat struct {
	Size  int64
	Mtime time.Time
}

// StatFile tells a file's size and modification time inside a container (a HEAD of the archive
// API: a few milliseconds, where copying the file out takes some 120 ms on Docker 20.10).
func (e *Engine) StatFile(ctx context.Context, name, path string) (FileStat, error) {
	st, err := e.c.ContainerStatPath(ctx, name, path)
	if err != nil {
		return FileStat{}, wrap(err, "looking at %s in %s", path, name)
	}
	return FileStat{Size: st.Size, Mtime: st.Mtime}, nil
}
