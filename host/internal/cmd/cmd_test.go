package cmd

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"coop/host/internal/lock"
	"coop/host/internal/release"
)

// agent is the command line with buffers for its streams, under a host root in a temp dir.
func agent(t *testing.T, stdin string) (*env, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	root := t.TempDir()
	var out, errb bytes.Buffer
	return &env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb, root: root, exe: filepath.Join(root, "bin", "coop-agent-0123456789ab")}, &out, &errb
}

func TestVersionIsTheFileName(t *testing.T) {
	e, out, _ := agent(t, "")
	if code := e.run([]string{"version"}); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if out.String() != `{"version":"coop-agent-0123456789ab"}`+"\n" {
		t.Fatalf("stdout %q", out)
	}
}

func TestPrepare(t *testing.T) {
	e, out, _ := agent(t, "")
	if code := e.run([]string{"prepare", "alpha"}); code != 0 {
		t.Fatalf("exit %d", code)
	}
	dir := filepath.Join(e.root, "coops", "alpha")
	var rep PrepareReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || rep != (PrepareReport{Coop: "alpha", Dir: dir}) {
		t.Fatalf("report %s (%v)", out, err)
	}
	for path, mode := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, "config"): 0o755} {
		info, err := os.Stat(path)
		if err != nil || !info.IsDir() || info.Mode().Perm()&mode != info.Mode().Perm() || info.Mode().Perm()&0o700 != 0o700 {
			t.Fatalf("%s: %v %v", path, info.Mode(), err)
		}
	}
	if info, _ := os.Stat(dir); info.Mode().Perm() != 0o700 {
		t.Fatalf("co-op dir mode %v", info.Mode().Perm())
	}
	// Again: idempotent.
	if code := e.run([]string{"prepare", "alpha"}); code != 0 {
		t.Fatalf("second prepare exit %d", code)
	}
}

func TestBadInputIsRefusedBeforeAnythingRuns(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		stdin string
		want  string
	}{
		{[]string{"prepare", "Alpha"}, "", `invalid co-op id "Alpha": must be DNS-safe`},
		{[]string{"prepare", "../x"}, "", `invalid co-op id "../x"`},
		{[]string{"remove", "a_b"}, "", `invalid co-op id "a_b"`},
		{[]string{"releases"}, "", "accepts 1 arg(s), received 0"},
		{[]string{"deploy", "alpha"}, "", `deploy takes no arguments (the release document comes on stdin)`},
		{[]string{"deploy"}, `{"coop":"alpha","extra":1}`, `release: unknown field "extra"`},
		{[]string{"deploy"}, ``, `release: no document on stdin`},
		{[]string{"deploy", "--health-interval", "0"}, `{}`, `--health-interval must be from 0.001 to 60 seconds`},
		{[]string{"deploy", "--lock-wait", "-1"}, `{}`, `--lock-wait must be 0 or more seconds`},
		{[]string{"deploy", "--deploy-id", "a b"}, `{}`, `--deploy-id must be 1 to 64 letters`},
		{[]string{"state", "Alpha"}, "", `invalid co-op id "Alpha"`},
		{[]string{"reconcile", "alpha"}, "", `unknown command "alpha"`},
		{[]string{"host-up"}, `{"network":"coop","proxy":{"image":"x"}}`, `host.proxy.image: must be pinned by digest`},
		{[]string{"host-down", "--network", "coop"}, ``, `unknown flag: --network`},
		{[]string{"hold", "Alpha", "--key", "k"}, "", `invalid co-op id "Alpha"`},
		{[]string{"hold", "alpha"}, "", `--key is required`},
		{[]string{"hold", "alpha", "--key", "k"}, "{}", `backup.image: is required`},
		{[]string{"restore", "alpha"}, "", `--key is required`},
		{[]string{"nonsense"}, "", `unknown command "nonsense"`},
	} {
		e, out, errb := agent(t, tc.stdin)
		if code := e.run(tc.args); code != 1 {
			t.Errorf("%v: exit %d", tc.args, code)
		}
		if out.Len() != 0 {
			t.Errorf("%v: printed %q on stdout", tc.args, out)
		}
		if !strings.Contains(errb.String(), tc.want) || !strings.HasPrefix(errb.String(), "coop-agent: ") {
			t.Errorf("%v: stderr %q, want %q", tc.args, errb, tc.want)
		}
	}
}

func TestReleasesPrintsTheRecord(t *testing.T) {
	e, out, _ := agent(t, "")
	if code := e.run([]string{"releases", "alpha"}); code != 0 || out.Len() != 0 {
		t.Fatalf("no record: exit %d, %q", code, out)
	}
	dir := filepath.Join(e.root, "coops", "alpha")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	line := `{"time":"2026-01-01T00:00:00Z","coop":"alpha","image":"a@sha256:00","slot":"blue","reused":false,"releaseKey":"k","by":"x","ms":1}` + "\n"
	if err := os.WriteFile(filepath.Join(dir, "releases.log"), []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	if code := e.run([]string{"releases", "alpha"}); code != 0 || out.String() != line {
		t.Fatalf("exit %d, %q", code, out)
	}
}

func TestInstallCopiesAtomicallyWithMode0755(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.WriteFile(src, []byte("#!agent\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(dir, "bin", "coop-agent-0123456789ab")
	if err := os.Mkdir(filepath.Dir(dest), 0o755); err != nil {
		t.Fatal(err)
	}
	// An older version in place is replaced whole.
	if err := os.WriteFile(dest, []byte("old"), 0o755); err != nil {
		t.Fatal(err)
	}
	rep, err := install(src, dest, "")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(dest)
	info, _ := os.Stat(dest)
	if string(b) != "#!agent\n" || info.Mode().Perm() != 0o755 {
		t.Fatalf("content %q mode %v", b, info.Mode())
	}
	sum := sha256.Sum256([]byte("#!agent\n"))
	if rep.Path != dest || rep.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("report %+v", rep)
	}
	entries, _ := os.ReadDir(filepath.Dir(dest))
	if len(entries) != 2 {
		t.Fatalf("left behind: %v", entries)
	}
	// The stable path names the installed agent, relative to its directory, and follows the
	// next version installed.
	link := filepath.Join(dir, "bin", "coop-agent")
	if target, err := os.Readlink(link); err != nil || target != "coop-agent-0123456789ab" || rep.Link != link {
		t.Fatalf("link %q %v, report %+v", target, err, rep)
	}
	next := filepath.Join(dir, "bin", "coop-agent-ba9876543210")
	if _, err := install(src, next, ""); err != nil {
		t.Fatal(err)
	}
	if target, _ := os.Readlink(link); target != "coop-agent-ba9876543210" {
		t.Fatalf("link names %q after the next install", target)
	}
	if entries, _ := os.ReadDir(filepath.Dir(dest)); len(entries) != 3 {
		t.Fatalf("left behind: %v", entries)
	}
	if _, err := install(src, filepath.Join(dir, "missing", "x"), ""); err == nil {
		t.Fatal("installed into a missing directory")
	}
}

func TestInstallRunsAsTheCommand(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	e, out, errb := agent(t, "")
	e.exe = exe
	dest := filepath.Join(t.TempDir(), "coop-agent-x")
	if code := e.run([]string{"install", dest}); code != 0 {
		t.Fatalf("exit %d: %s", code, errb)
	}
	var rep InstallReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || rep.Path != dest {
		t.Fatalf("report %s", out)
	}
	a, _ := os.ReadFile(exe)
	b, _ := os.ReadFile(dest)
	if !bytes.Equal(a, b) {
		t.Fatal("the copy differs from the executable")
	}
}

func TestDeployFlagsHaveNamedDefaults(t *testing.T) {
	e, _, _ := agent(t, "")
	cmd := e.newDeployCommand()
	for name, want := range map[string]string{"lock-wait": "600", "health-interval": "0.1", "only-if-retained": "false"} {
		f := cmd.Flags().Lookup(name)
		if f == nil || f.DefValue != want {
			t.Errorf("--%s default %v, want %s", name, f, want)
		}
	}
}

// A reconcile that waits for a host-up reads the host document only once it holds the host's
// lock: read before, it would recreate the proxy from the document that host-up replaced (seen
// when the host's watch started while a `pulumi up` ran host-up).
func TestHostUpReadsTheDocumentUnderTheLock(t *testing.T) {
	root := t.TempDir()
	held, err := lock.Acquire(context.Background(), root, lock.Options{Holder: lock.Self("host-up")})
	if err != nil {
		t.Fatal(err)
	}
	read := make(chan time.Time, 1)
	done := make(chan error, 1)
	go func() {
		_, err := hostUp(context.Background(), nil, root, "reconcile", func() (release.Host, bool, error) {
			read <- time.Now()
			return release.Host{}, false, errors.New("stop here")
		}, t.Logf, func([]byte) {})
		done <- err
	}()
	time.Sleep(3 * lock.PollInterval)
	released := time.Now()
	held.Release()
	if err := <-done; err == nil || err.Error() != "stop here" {
		t.Fatalf("hostUp: %v", err)
	}
	if at := <-read; at.Before(released) {
		t.Fatalf("the document was read %v before the lock was free", released.Sub(at))
	}
}

// A reconcile saves the document it read from ROOT/host.json: the file is left as it is, not
// rewritten; a changed document replaces it.
func TestSaveHostWritesOnlyAChange(t *testing.T) {
	root := t.TempDir()
	h := release.Host{Network: "coop", Proxy: release.Proxy{Image: "r/kamal-proxy@sha256:" + strings.Repeat("a", 64), BindAddress: "127.0.0.1", HTTPPort: 80, HTTPSPort: 443}}
	inode := func() uint64 {
		st, err := os.Stat(filepath.Join(root, HostFile))
		if err != nil {
			t.Fatal(err)
		}
		return st.Sys().(*syscall.Stat_t).Ino
	}
	if err := saveHost(root, h); err != nil {
		t.Fatal(err)
	}
	first := inode()
	if err := saveHost(root, h); err != nil || inode() != first {
		t.Fatalf("the same document was written again (%v)", err)
	}
	h.Proxy.HTTPPort = 8080
	if err := saveHost(root, h); err != nil || inode() == first {
		t.Fatalf("a changed document was not written (%v)", err)
	}
	if got, ok, err := loadHost(root); err != nil || !ok || got.Proxy.HTTPPort != 8080 {
		t.Fatalf("loadHost = %+v, %v, %v", got, ok, err)
	}
}
