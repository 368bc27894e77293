package engine

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/go-connections/nat"
)

func TestSpecConfigsAreWhatDockerRunGave(t *testing.T) {
	s := Spec{
		Name: "coop-alpha-blue", Image: "r/app@sha256:ab", Env: []string{"A=1"},
		Labels:  map[string]string{"coop.managed": "true", "coop.id": "alpha"},
		Network: "coop", Mounts: []Mount{{Volume: "coop-alpha-data", Target: "/data"}, {HostDir: "/opt/coop/coops/alpha/config", Target: "/config", ReadOnly: true}},
		Memory: 128 << 20, NanoCPUs: 5e8, Restart: true,
	}
	cfg, host, net := s.configs()
	if cfg.Image != s.Image || !reflect.DeepEqual(cfg.Env, s.Env) || !reflect.DeepEqual(cfg.Labels, s.Labels) || cfg.Cmd != nil {
		t.Errorf("config: %+v", cfg)
	}
	want := &container.HostConfig{
		Mounts: []mount.Mount{
			{Type: mount.TypeVolume, Source: "coop-alpha-data", Target: "/data"},
			// A bind mount, not a --volume bind: a missing directory fails the start instead of being made (as root).
			{Type: mount.TypeBind, Source: "/opt/coop/coops/alpha/config", Target: "/config", ReadOnly: true},
		},
		NetworkMode:   "coop",
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped},
		LogConfig:     container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "10m", "max-file": "3"}},
		Resources:     container.Resources{Memory: 128 << 20, NanoCPUs: 5e8},
	}
	if !reflect.DeepEqual(host, want) {
		t.Errorf("host config:\n got %+v\nwant %+v", host, want)
	}
	if !reflect.DeepEqual(net, &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{"coop": {}}}) {
		t.Errorf("networking: %+v", net)
	}

	// A one-off has no restart policy; published ports are exposed and bound.
	s = Spec{Name: "p", Image: "i", Cmd: []string{"migrate"}, Ports: []Port{{"127.0.0.1", 8080, 80}, {"127.0.0.1", 8443, 443}}}
	cfg, host, _ = s.configs()
	if host.RestartPolicy.Name != "" || !reflect.DeepEqual([]string(cfg.Cmd), []string{"migrate"}) {
		t.Errorf("one-off: %+v %+v", cfg, host)
	}
	if _, ok := cfg.ExposedPorts["80/tcp"]; !ok {
		t.Errorf("exposed: %v", cfg.ExposedPorts)
	}
	if !reflect.DeepEqual(host.PortBindings["443/tcp"], []nat.PortBinding{{HostIP: "127.0.0.1", HostPort: "8443"}}) {
		t.Errorf("bindings: %v", host.PortBindings)
	}
}

func TestParseMemoryAndCPUs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"", 0, true}, {"128m", 128 << 20, true}, {"1g", 1 << 30, true}, {"512k", 512 << 10, true}, {"100b", 100, true},
		{"1.5x", 0, false}, {"-1m", 0, false},
	} {
		got, err := ParseMemory(tc.in)
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("ParseMemory(%q) = %d, %v", tc.in, got, err)
		}
	}
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"", 0, true}, {"0.5", 5e8, true}, {"2", 2e9, true}, {"1.25", 1.25e9, true},
		{"0", 0, false}, {"x", 0, false}, {"0.0000000001", 0, false},
	} {
		got, err := ParseCPUs(tc.in)
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("ParseCPUs(%q) = %d, %v", tc.in, got, err)
		}
	}
}

func TestParseEnvFileAsDockerDoes(t *testing.T) {
	lookup := func(k string) (string, bool) {
		if k == "FROM_ENV" {
			return "passed", true
		}
		return "", false
	}
	content := "\xef\xbb\xbfFIRST=1\n" +
		"# a comment\n" +
		"\n" +
		"   INDENTED=two words  \n" +
		"EMPTY=\n" +
		"EQUALS=a=b=c\n" +
		"QUOTED=\"kept as is\"\n" +
		"CRLF=x\r\n" +
		"FROM_ENV\n" +
		"NOT_IN_ENV\n"
	got, err := ParseEnvFile([]byte(content), "env", lookup)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"FIRST=1", "INDENTED=two words  ", "EMPTY=", "EQUALS=a=b=c", `QUOTED="kept as is"`, "CRLF=x", "FROM_ENV=passed"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}

func TestParseEnvFileErrorsNeverQuoteValues(t *testing.T) {
	for _, tc := range []struct{ content, want string }{
		{"=s3cret-value\n", "line 1 has no variable name"},
		{"BAD NAME=s3cret-value\n", "line 1: the variable name holds white space"},
		{"OK=1\nX=\xff s3cret-value\n", "line 2 is not valid UTF-8"},
	} {
		_, err := ParseEnvFile([]byte(tc.content), "/opt/coop/coops/a/env", nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want %q", tc.content, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("the error shows the value: %v", err)
		}
	}
}

func TestRegistryAuthFromDockerConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "config.json")
	cfg := `{"auths":{"ghcr.io":{"auth":"` + base64.StdEncoding.EncodeToString([]byte("bot:tok:en")) + `"},` +
		`"https://index.docker.io/v1/":{"auth":"` + base64.StdEncoding.EncodeToString([]byte("hub:pw")) + `"}}}`
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	decode := func(s string) registry.AuthConfig {
		t.Helper()
		var ac registry.AuthConfig
		b, err := base64.URLEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &ac); err != nil {
			t.Fatal(err)
		}
		return ac
	}
	ac := decode(registryAuth("ghcr.io/org/app@sha256:"+strings.Repeat("a", 64), file))
	if ac.Username != "bot" || ac.Password != "tok:en" || ac.ServerAddress != "ghcr.io" {
		t.Errorf("ghcr.io: %+v", ac)
	}
	ac = decode(registryAuth("library/app@sha256:"+strings.Repeat("a", 64), file))
	if ac.Username != "hub" {
		t.Errorf("docker hub: %+v", ac)
	}
	if got := registryAuth("127.0.0.1:5001/app@sha256:"+strings.Repeat("a", 64), file); got != "" {
		t.Errorf("no credentials for the local registry, got %q", got)
	}
	if got := registryAuth("ghcr.io/a/b@sha256:"+strings.Repeat("a", 64), filepath.Join(dir, "missing.json")); got != "" {
		t.Errorf("no config file: %q", got)
	}
}

func TestReadPullStream(t *testing.T) {
	ok := `{"status":"Pulling from coop-demo"}` + "\n" + `{"status":"Digest: sha256:ab"}` + "\n"
	if err := readPullStream(strings.NewReader(ok), "r/a@sha256:ab"); err != nil {
		t.Fatal(err)
	}
	bad := `{"status":"Pulling"}` + "\n" + `{"errorDetail":{"message":"manifest unknown"},"error":"manifest unknown"}` + "\n"
	err := readPullStream(strings.NewReader(bad), "r/a@sha256:ab")
	if err == nil || err.Error() != "pulling r/a@sha256:ab: manifest unknown" {
		t.Fatalf("err = %v", err)
	}
}

func TestFirstFileInTar(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	_ = tw.WriteHeader(&tar.Header{Name: "dir/", Typeflag: tar.TypeDir, Mode: 0o755})
	_ = tw.WriteHeader(&tar.Header{Name: "kamal-proxy.state", Typeflag: tar.TypeReg, Mode: 0o644, Size: 5})
	_, _ = tw.Write([]byte(`[{}]` + "\n"))
	_ = tw.Close()
	got, err := firstFileInTar(&buf)
	if err != nil || string(got) != "[{}]\n" {
		t.Fatalf("got %q, %v", got, err)
	}
	var empty bytes.Buffer
	_ = tar.NewWriter(&empty).Close()
	if _, err := firstFileInTar(&empty); !errors.Is(err, ErrNotFound) {
		t.Fatalf("empty archive: %v", err)
	}
}

func TestLoginsOfTheStacksBeforeTheUsersNewestFirst(t *testing.T) {
	root := t.TempDir()
	home := t.TempDir()
	t.Setenv("DOCKER_CONFIG", home)
	write := func(path, user, pass string, age time.Duration) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		cfg := `{"auths":{"127.0.0.1:5002":{"auth":"` + base64.StdEncoding.EncodeToString([]byte(user+":"+pass)) + `"}}}`
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		when := time.Now().Add(-age)
		if err := os.Chtimes(path, when, when); err != nil {
			t.Fatal(err)
		}
	}
	ref := "127.0.0.1:5002/coop-demo@sha256:" + strings.Repeat("b", 64)
	write(filepath.Join(home, "config.json"), "own", "pw", 0)
	if _, login := registryLogin(ref, loginFiles(root)); login.User != "own" {
		t.Fatalf("with no stack's login the deploy user's is used: %+v", login)
	}
	write(filepath.Join(root, LoginsDir, "coop.local.node-1", "config.json"), "older", "pw", time.Hour)
	write(filepath.Join(root, LoginsDir, "coop.suite.suite-1", "config.json"), "newer", "pw", time.Minute)
	auth, login := registryLogin(ref, loginFiles(root))
	if login.User != "newer" || login.Registry != "127.0.0.1:5002" || auth == "" {
		t.Fatalf("the newest stack's login wins: %+v", login)
	}
	if s := login.String(); s != "from 127.0.0.1:5002 as newer" {
		t.Errorf("login.String() = %q", s)
	}
	_, anon := registryLogin("ghcr.io/org/app@sha256:"+strings.Repeat("c", 64), loginFiles(root))
	if anon.User != "" || !strings.Contains(anon.String(), "from ghcr.io anonymously") || !strings.Contains(anon.String(), "coop:registries") {
		t.Errorf("anonymous: %q", anon.String())
	}
	if strings.Contains(login.String(), "pw") {
		t.Errorf("a login's description shows its password: %q", login.String())
	}
}

// pullerOf answers ImagePresent with false and each Pull with the next of errs.
type pullerOf struct {
	errs  []error
	pulls int
}

func (p *pullerOf) ImagePresent(context.Context, string) (bool, error) { return false, nil }
func (p *pullerOf) Pull(context.Context, string) error {
	p.pulls++
	return p.errs[min(p.pulls, len(p.errs))-1]
}

func TestEnsureImageTriesOnceWhenTheRegistryRefusesTheLogin(t *testing.T) {
	nap := func(context.Context, time.Duration) error { return nil }
	quiet := func(string, ...any) {}
	refused := refusal(errors.New("pulling r/a@sha256:ab from r as coop: Error response from daemon: Head \"http://r/v2/a/manifests/sha256:ab\": unauthorized: authentication required"))
	p := &pullerOf{errs: []error{refused}}
	err := EnsureImage(context.Background(), p, "r/a@sha256:ab", 3, nap, quiet)
	if !errors.Is(err, ErrPullRefused) || p.pulls != 1 {
		t.Fatalf("a refused login is tried once: %d pulls, %v", p.pulls, err)
	}
	p = &pullerOf{errs: []error{errors.New("pulling r/a: connection reset"), nil}}
	if err := EnsureImage(context.Background(), p, "r/a@sha256:ab", 3, nap, quiet); err != nil || p.pulls != 2 {
		t.Fatalf("a network failure is tried again: %d pulls, %v", p.pulls, err)
	}
	if errors.Is(refusal(errors.New("manifest unknown")), ErrPullRefused) {
		t.Error("a missing manifest is not a refused login")
	}
}
