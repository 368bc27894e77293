package engine

import (
	"fmt"
	"math/big"
	"strconv"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"
	"github.com/docker/go-units"
)

// Log options of every container the agent starts: the json-file driver, rotated at 10 MB,
// three files kept (a co-op cannot fill the disk with its log).
const (
	LogDriver  = "json-file"
	LogMaxSize = "10m"
	LogMaxFile = "3"
	// RestartPolicy of long-running containers: back after a reboot or an engine restart,
	// except when stopped on purpose (the kept slot stays stopped).
	RestartPolicy = container.RestartPolicyUnlessStopped
)

// Port publishes a container port on the host.
type Port struct {
	HostIP        string
	HostPort      int
	ContainerPort int
}

// Mount is a volume or a host directory in a container. A host directory is mounted as
// `--mount type=bind` does, never as `--volume` does: a missing directory makes the start fail
// instead of being created by the engine (as root, in the deploy user's tree).
type Mount struct {
	// Volume is a named volume (created when missing); HostDir a host directory that must exist.
	Volume   string
	HostDir  string
	Target   string
	ReadOnly bool
}

// Spec is a container as the agent creates it: everything `docker run` was given before.
type Spec struct {
	Name    string
	Image   string
	Cmd     []string // nil: the image's command
	Env     []string // NAME=value; never printed
	Labels  map[string]string
	Network string
	Mounts  []Mount
	Ports   []Port
	// Memory in bytes and CPUs in billionths of a CPU; 0: no limit.
	Memory   int64
	NanoCPUs int64
	// Restart: restart unless stopped (long-running slots and the proxy); false for one-offs.
	Restart bool
}

// configs is the Spec as the engine API takes it, the way the docker CLI fills it for
// `docker run --network N --env-file F --mount ... --label ... --log-opt ... --memory --cpus`.
func (s Spec) configs() (*container.Config, *container.HostConfig, *network.NetworkingConfig) {
	cfg := &container.Config{
		Image:  s.Image,
		Cmd:    s.Cmd,
		Env:    s.Env,
		Labels: s.Labels,
	}
	host := &container.HostConfig{
		Mounts:      mounts(s.Mounts),
		NetworkMode: container.NetworkMode(s.Network),
		LogConfig: container.LogConfig{
			Type:   LogDriver,
			Config: map[string]string{"max-size": LogMaxSize, "max-file": LogMaxFile},
		},
		Resources: container.Resources{Memory: s.Memory, NanoCPUs: s.NanoCPUs},
	}
	if s.Restart {
		host.RestartPolicy = container.RestartPolicy{Name: RestartPolicy}
	}
	if len(s.Ports) > 0 {
		cfg.ExposedPorts = nat.PortSet{}
		host.PortBindings = nat.PortMap{}
		for _, p := range s.Ports {
			port := nat.Port(strconv.Itoa(p.ContainerPort) + "/tcp")
			cfg.ExposedPorts[port] = struct{}{}
			host.PortBindings[port] = append(host.PortBindings[port], nat.PortBinding{HostIP: p.HostIP, HostPort: strconv.Itoa(p.HostPort)})
		}
	}
	var net *network.NetworkingConfig
	if s.Network != "" {
		net = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{s.Network: {}}}
	}
	return cfg, host, net
}

// mounts are the Spec's mounts as the engine API takes them.
func mounts(ms []Mount) []mount.Mount {
	if len(ms) == 0 {
		return nil
	}
	out := make([]mount.Mount, 0, len(ms))
	for _, m := range ms {
		if m.HostDir != "" {
			out = append(out, mount.Mount{Type: mount.TypeBind, Source: m.HostDir, Target: m.Target, ReadOnly: m.ReadOnly})
		} else {
			out = append(out, mount.Mount{Type: mount.TypeVolume, Source: m.Volume, Target: m.Target, ReadOnly: m.ReadOnly})
		}
	}
	return out
}

// ParseMemory reads a memory limit as `docker run --memory` does (128m, 1g: powers of 1024).
func ParseMemory(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := units.RAMInBytes(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("memory %q is not a size such as 512m or 1g", s)
	}
	return n, nil
}

// ParseCPUs reads a CPU limit as `docker run --cpus` does: a decimal number of CPUs, kept as
// billionths of a CPU.
func ParseCPUs(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok || r.Sign() <= 0 {
		return 0, fmt.Errorf("cpus %q is not a positive number such as 0.5 or 2", s)
	}
	nano := r.Mul(r, big.NewRat(1e9, 1))
	if !nano.IsInt() || !nano.Num().IsInt64() {
		return 0, fmt.Errorf("cpus %q has more than 9 decimal places or is too large", s)
	}
	return nano.Num().Int64(), nil
}
