package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"coop/host/internal/release"
)

// coopctlKey is the release key as coopctl computed it, run by bash and coreutils.
const coopctlKey = `{ printf '%s\n' "$@"; find "$DIR/env" "$DIR/config" -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum; } | sha256sum | cut -c1-16`

func TestReleaseKeyIsCoopctls(t *testing.T) {
	for _, tool := range []string{"bash", "sha256sum", "find", "sort", "xargs", "cut"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	dir := filepath.Join(t.TempDir(), "coops", "alpha")
	for path, content := range map[string]string{
		"env":                  "COOP_ID=alpha\nSECRET=x\n",
		"config/coop.yaml":     "a: 1\n",
		"config/b.txt":         "b\n",
		"config/nested/z.json": "{}",
		"config/A-upper":       "upper sorts first in C\n",
	} {
		p := filepath.Join(dir, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("coop.yaml", filepath.Join(dir, "config", "link")); err != nil {
		t.Fatal(err)
	}
	for _, r := range []release.Release{
		{Image: "r/app@sha256:ab", Port: 8080, HealthPath: "/health", Memory: "128m", CPUs: "0.5", Network: "coop", Domains: []string{"a.example", "b.example"}, Migrate: []string{"migrate", "--all"}},
		{Image: "r/app@sha256:ab", Port: 3000, HealthPath: "/up", Network: "coop", Domains: []string{"a.example"}, Migrate: []string{}},
	} {
		args := append([]string{"-c", coopctlKey, "key", r.Image, strconv.Itoa(r.Port), r.HealthPath, r.Memory, r.CPUs, r.Network}, r.Domains...)
		args = append(args, r.Migrate...)
		cmd := exec.Command("bash", args...)
		cmd.Env = append(os.Environ(), "DIR="+dir)
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		got, err := ReleaseKey(r, dir)
		if err != nil {
			t.Fatal(err)
		}
		if want := strings.TrimSpace(string(out)); got != want {
			t.Errorf("ReleaseKey = %s, coopctl's = %s (%+v)", got, want, r)
		}
	}
}

func TestReleaseKeyChangesWithEveryInput(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "env"), []byte("A=1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := release.Release{Image: "r/app@sha256:ab", Port: 8080, HealthPath: "/health", Network: "coop", Domains: []string{"a.example"}, Migrate: []string{"migrate"}, Retain: 2, HealthTimeoutSeconds: 60}
	key := func(r release.Release) string {
		k, err := ReleaseKey(r, dir)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	k0 := key(base)
	same := base
	same.Retain, same.TLS, same.HealthTimeoutSeconds, same.DrainTimeoutSeconds = 5, true, 10, 1
	if key(same) != k0 {
		t.Error("retain, tls or a timeout changed the key; they do not change the container")
	}
	for name, change := range map[string]func(*release.Release){
		"image":   func(r *release.Release) { r.Image = "r/app@sha256:cd" },
		"port":    func(r *release.Release) { r.Port = 3000 },
		"health":  func(r *release.Release) { r.HealthPath = "/up" },
		"memory":  func(r *release.Release) { r.Memory = "1g" },
		"cpus":    func(r *release.Release) { r.CPUs = "1" },
		"network": func(r *release.Release) { r.Network = "other" },
		"domains": func(r *release.Release) { r.Domains = []string{"b.example"} },
		"migrate": func(r *release.Release) { r.Migrate = nil },
	} {
		r := base
		change(&r)
		if key(r) == k0 {
			t.Errorf("changing %s kept the key", name)
		}
	}
}
