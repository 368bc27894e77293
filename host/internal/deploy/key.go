package deploy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"coop/host/internal/release"
)

// ReleaseKey is what makes a release: the image, everything the container is started with, and
// the content of the co-op's env file and config files, hashed here on the host so no secret
// crosses the wire. The same inputs give the same key, and a deploy of the key the live slot
// runs changes nothing.
//
// It is byte for byte the key coopctl computed, so containers started by coopctl keep their
// release when the host moves to the agent:
//
//	{ printf '%s\n' IMAGE PORT HEALTH_PATH MEMORY CPUS NETWORK DOMAINS... MIGRATE...
//	  find DIR/env DIR/config -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
//	} | sha256sum | cut -c1-16
//
// TLS, retain and the timeouts are not in it: they do not change the container.
func ReleaseKey(rel release.Release, dir string) (string, error) {
	h := sha256.New()
	lines := []string{rel.Image, fmt.Sprint(rel.Port), rel.HealthPath, rel.Memory, rel.CPUs, rel.Network}
	lines = append(lines, rel.Domains...)
	lines = append(lines, rel.Migrate...)
	for _, l := range lines {
		io.WriteString(h, l+"\n")
	}
	files, err := keyFiles(dir)
	if err != nil {
		return "", err
	}
	for _, f := range files {
		sum, err := fileSHA256(f)
		if err != nil {
			return "", err
		}
		io.WriteString(h, sha256sumLine(sum, f))
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// keyFiles are DIR/env and the regular files under DIR/config, sorted by bytes (LC_ALL=C).
func keyFiles(dir string) ([]string, error) {
	var files []string
	env := filepath.Join(dir, "env")
	if info, err := os.Lstat(env); err == nil && info.Mode().IsRegular() {
		files = append(files, env)
	}
	config := filepath.Join(dir, "config")
	err := filepath.WalkDir(config, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == config && os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if d.Type().IsRegular() {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the co-op's config files: %w", err)
	}
	sort.Strings(files)
	return files, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// sha256sumLine is the line GNU sha256sum prints for a file: a name holding a backslash or a
// line feed is escaped and the line starts with a backslash.
func sha256sumLine(sum, name string) string {
	if strings.ContainsAny(name, "\\\n") {
		name = strings.NewReplacer("\\", "\\\\", "\n", "\\n").Replace(name)
		return "\\" + sum + "  " + name + "\n"
	}
	return sum + "  " + name + "\n"
}
