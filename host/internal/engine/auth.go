package engine

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
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

// registryAuth is the X-Registry-Auth value for pulling ref: the credentials `docker login`
// stored in the deploy user's config.json for ref's registry (so a private registry works as it
// did with the docker CLI), or "" for an anonymous pull. Credential helpers (credsStore) are
// not consulted: a server's `docker login` without a desktop keyring writes the auths entry.
func registryAuth(ref, configFile string) string {
	if configFile == "" {
		return ""
	}
	b, err := os.ReadFile(configFile)
	if err != nil {
		return ""
	}
	var cfg struct {
		Auths map[string]struct {
			Auth          string `json:"auth"`
			IdentityToken string `json:"identitytoken"`
		} `json:"auths"`
	}
	if json.Unmarshal(b, &cfg) != nil {
		return ""
	}
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ""
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
				return ""
			}
			user, pass, ok := strings.Cut(string(dec), ":")
			if !ok {
				return ""
			}
			ac.Username, ac.Password = user, pass
		}
		enc, err := registry.EncodeAuthConfig(ac)
		if err != nil {
			return ""
		}
		return enc
	}
	return ""
}
