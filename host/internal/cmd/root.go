// Package cmd is the agent's command line: one file per subcommand, typed flags with named
// defaults. Every subcommand prints one JSON report on stdout (encoding/json) and its progress
// and errors on stderr; documents (a release, a host) come as JSON on stdin, never as arguments.
package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"coop/host/internal/engine"
	"coop/host/internal/proxy"
	"coop/host/internal/release"
	"coop/host/internal/rules"
)

// Name is the program's name in messages.
const Name = "coop-agent"

// Exit codes.
const (
	ExitOK          = 0
	ExitFailed      = 1
	ExitNotRetained = 3 // deploy --only-if-retained: the idle slot does not hold the release
)

// env is where a command reads and writes: the streams, and the host root.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	// root is ROOT: the directory above the agent's bin/ directory (ROOT/bin/coop-agent-<hash>).
	root string
	// exe is the agent's own executable.
	exe string
}

// exitError ends the program with a code other than 1, after its report was printed.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// Execute runs the command line and returns the exit code.
func Execute(args []string) int {
	// A client that went away (SSH cut) must not kill the agent halfway: a write to its closed
	// stdout fails instead of raising SIGPIPE, and the release decides what to do.
	signalIgnorePipe()
	e := &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}
	if exe, err := os.Executable(); err == nil {
		if resolved, err := filepath.EvalSymlinks(exe); err == nil {
			exe = resolved
		}
		e.exe = exe
		e.root = filepath.Dir(filepath.Dir(exe))
	}
	return e.run(args)
}

func (e *env) run(args []string) int {
	root := e.newRoot()
	root.SetArgs(args)
	root.SetIn(e.stdin)
	root.SetOut(e.stderr)
	root.SetErr(e.stderr)
	err := root.Execute()
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			e.logf("%v", ee.err)
		}
		return ee.code
	}
	e.logf("%v", err)
	return ExitFailed
}

func (e *env) newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           Name,
		Short:         "The co-op host agent: runs co-op releases on this host behind kamal-proxy",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.AddCommand(
		e.newVersionCommand(),
		e.newHostUpCommand(),
		e.newHostDownCommand(),
		e.newStatusCommand(),
		e.newPrepareCommand(),
		e.newDeployCommand(),
		e.newRemoveCommand(),
		e.newReleasesCommand(),
		e.newInstallCommand(),
		e.newUninstallCommand(),
		e.newRetireCommand(),
		e.newReconcileCommand(),
		e.newWatchCommand(),
		e.newStateCommand(),
		e.newLogsCommand(),
		e.newBackupsCommand(),
		e.newRestoreCommand(),
		e.newHoldCommand(),
		e.newResumeCommand(),
	)
	return root
}

// logf prints a progress or error line on stderr; a closed stderr is ignored.
func (e *env) logf(format string, args ...any) {
	_, _ = fmt.Fprintf(e.stderr, "%s: %s\n", Name, fmt.Sprintf(format, args...))
}

// block prints lines (a container's log) indented on stderr.
func (e *env) block(text []byte) {
	var b bytes.Buffer
	for _, line := range strings.Split(strings.TrimRight(string(text), "\n"), "\n") {
		b.WriteString("    " + line + "\n")
	}
	_, _ = e.stderr.Write(b.Bytes())
}

// report prints a command's report: one JSON object and a newline on stdout.
func (e *env) report(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = e.stdout.Write(append(b, '\n'))
	return err
}

// coopDir is ROOT/coops/ID.
func (e *env) coopDir(id string) string { return filepath.Join(e.root, "coops", id) }

// needRoot fails when the agent's own path did not tell ROOT.
func (e *env) needRoot() error {
	if e.root == "" || e.root == "/" || e.root == "." {
		return fmt.Errorf("cannot tell the host root from the agent's path %q (it runs as ROOT/bin/%s-<hash>)", e.exe, Name)
	}
	return nil
}

// coopID checks a positional co-op id.
func coopID(args []string) (string, error) {
	if len(args) != 1 {
		return "", fmt.Errorf("expected one co-op id, got %d arguments", len(args))
	}
	if !rules.CoopID(args[0]) {
		return "", fmt.Errorf("invalid co-op id %q: %s", args[0], rules.CoopIDHint)
	}
	return args[0], nil
}

// documentReader checks that stdin is not a terminal (a document is piped in) and returns it.
func (e *env) documentReader(what string) (io.Reader, error) {
	if f, ok := e.stdin.(*os.File); ok {
		if info, err := f.Stat(); err == nil && info.Mode()&os.ModeCharDevice != 0 {
			return nil, fmt.Errorf("expects the %s document as JSON on stdin", what)
		}
	}
	return e.stdin, nil
}

// decodeHost reads the host document from stdin.
func (e *env) decodeHost() (release.Host, error) {
	r, err := e.documentReader("host")
	if err != nil {
		return release.Host{}, err
	}
	return release.DecodeHost(r)
}

// ProxyCache is ROOT's copy of the proxy's state file (see proxy.Proxy.Cache).
const ProxyCache = ".proxy-state.json"

// ProxyLock is ROOT's lock of the proxy's routes (see proxy.Proxy.Lock): every agent on the
// host takes it, whichever binary it is. It stays when the host is taken down (a lock file
// removed while another process waits for it would let two holders in).
const ProxyLock = ".proxy-routes.lock"

// proxyLock is ROOT's ProxyLock, or "" (no lock) when ROOT is not known.
func proxyLock(root string) string {
	if root == "" {
		return ""
	}
	return filepath.Join(root, ProxyLock)
}

// proxyOf is the proxy driven through eng, with ROOT's copy of its state and ROOT's lock of its
// routes when ROOT is known.
func (e *env) proxyOf(eng *engine.Engine) *proxy.Proxy {
	p := &proxy.Proxy{Engine: eng}
	if e.needRoot() == nil {
		p.Cache = filepath.Join(e.root, ProxyCache)
		p.Dir = proxyDir(e.root)
		p.Lock = proxyLock(e.root)
	}
	return p
}

// connect reaches the Docker engine.
func (e *env) connect() (*engine.Engine, error) { return engine.Connect(e.root) }

// withEngine runs fn with the Docker engine and the command's context, once ROOT is known: what
// every subcommand that works on the host's co-ops starts with.
func (e *env) withEngine(cmd *cobra.Command, fn func(ctx context.Context, eng *engine.Engine) error) error {
	if err := e.needRoot(); err != nil {
		return err
	}
	eng, err := e.connect()
	if err != nil {
		return err
	}
	defer eng.Close()
	return fn(ctxOf(cmd), eng)
}

// ctxOf is the command's context, or a background one when it has none.
func ctxOf(cmd *cobra.Command) context.Context {
	if ctx := cmd.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}

// deployer is who deploys: COOP_DEPLOY_BY, else the user's name.
func deployer() string {
	if by := os.Getenv("COOP_DEPLOY_BY"); by != "" {
		return by
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if name := os.Getenv("USER"); name != "" {
		return name
	}
	return fmt.Sprint(os.Getuid())
}

// noArgs refuses positional arguments with a message that says where the input goes instead.
func noArgs(where string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("%s takes no arguments (%s); got %q", cmd.Name(), where, args)
		}
		return nil
	}
}

// signalExitCode is 128 + the signal, as a shell reports a process a signal ended.
func signalExitCode(s syscall.Signal) int { return 128 + int(s) }

// signalIgnorePipe makes writes to a closed pipe fail with EPIPE instead of ending the process.
func signalIgnorePipe() { signal.Ignore(syscall.SIGPIPE) }

// sleep waits d, or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-time.After(d):
		return nil
	}
}
