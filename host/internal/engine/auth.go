package engine

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/registry"
)

// dockerHubAuthKey is the key `docker login` writes Docker Hub's credentials under.
const dockerHubAuthKey = "https://index.docker.io/v1/"

// dockerConfigFile is the docker CLI's config: DOCKER_CONFIG/config.json, else ~/.docker/config.json.
func dockerConfigFile() string {
	if dir := os.Getenv("DOCKER_CONFIG"); dir != "" {
		return filepath.Join(dir, "config.json")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".docker", "config.json")
}

// LoginsDir is where the stacks' registry logins live under ROOT: one directory per holder (the
// stack's host, as `install --holder` names it), each a docker CLI config (config.json, 0600)
// that the program writes from coop:registries through stdin.
const LoginsDir = "registries"

// loginFiles lists the config files whose logins a pull uses, in the order they are tried: the
// stacks' (newest first, so that the last `up` to change its logins wins a registry two stacks
// name), then the deploy user's own `docker login`.
func loginFiles(root string) []string {
	var out []string
	if root != "" {
		matches, _ := filepath.Glob(filepath.Join(root, LoginsDir, "*", "config.json"))
		mtime := map[string]int64{}
		for _, m := range matches {
			if fi, err := os.Stat(m); err == nil {
				mtime[m] = fi.ModTime().UnixNano()
			}
		}
		sort.SliceStable(matches, func(i, j int) bool { return mtime[matches[i]] > mtime[matches[j]] })
		out = append(out, matches...)
	}
	if f := dockerConfigFile(); f != "" {
		out = append(out, f)
	}
	return out
}

// Login is the credential a pull of one image uses, for messages: whose registry, as whom.
type Login struct {
	Registry string
	// User is the login's user name; "" for an anonymous pull.
	User string
}

// registryLogin finds the login for ref's registry in the first of files that has one: its
// X-Registry-Auth value and who it is, or "" and an anonymous Login.
func registryLogin(ref string, files []string) (string, Login) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", Login{}
	}
	anonymous := Login{Registry: reference.Domain(named)}
	for _, f := range files {
		if auth, user, ok := registryAuthIn(named, f); ok {
			return auth, Login{Registry: anonymous.Registry, User: user}
		}
	}
	return "", anonymous
}

// registryAuth is the X-Registry-Auth value for pulling ref: the credentials `docker login`
// stored in configFile for ref's registry, or "" for an anonymous pull.
func registryAuth(ref, configFile string) string {
	auth, _ := registryLogin(ref, []string{configFile})
	return auth
}

// registryAuthIn reads configFile's entry for named's registry (so a private registry works as it
// did with the docker CLI). Credential helpers (credsStore) are not consulted: a server's
// `docker login` without a desktop keyring writes the auths entry, and so does the program.
func registryAuthIn(named reference.Named, configFile string) (auth, user string, ok bool) {
	if configFile == "" {
		return "", "", false
	}
	b, err := os.ReadFile(configFile)
	if err != nil {
		return "", "", false
	}
	var cfg struct {
		Auths map[string]struct {
			Auth          string `json:"auth"`
			IdentityToken string `json:"identitytoken"`
		} `json:"auths"`
	}
	if json.Unmarshal(b, &cfg) != nil {
		return "", "", false
	}
	host := reference.Domain(named)
	keys := []string{host, "https://" + host, "http://" + host, "https://" + host + "/v1/", "https://" + host + "/v2/"}
	if host == "docker.io" {
		keys = []string{dockerHubAuthKey, "docker.io", "index.docker.io", "https://index.docker.io/v1/"}
	}
	for _, k := range keys {
		entry, ok := cfg.Auths[k]
		if !ok {
			continue
		}
		ac := registry.AuthConfig{ServerAddress: k, IdentityToken: entry.IdentityToken}
		if entry.Auth != "" {
			dec, err := base64.StdEncoding.DecodeString(entry.Auth)
			if err != nil {
				return "", "", false
			}
			name, pass, found := strings.Cut(string(dec), ":")
			if !found {
				return "", "", false
			}
			ac.Username, ac.Password = name, pass
		}
		enc, err := registry.EncodeAuthConfig(ac)
		if err != nil {
			return "", "", false
		}
		return enc, ac.Username, true
	}
	return "", "", false
}
