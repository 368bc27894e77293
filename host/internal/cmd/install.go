package cmd

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"
)

// InstalledMode is the installed agent's mode: anyone may run it, only its owner replace it.
const InstalledMode os.FileMode = 0o755

// InstallReport is what `install` prints.
type InstallReport struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	// Link is DEST's directory's coop-agent, now naming DEST: the stable path the host's own
	// services (watch) run.
	Link string `json:"link"`
	// Holder is the file that records this install's holder (see holders.go); "" without one.
	Holder string `json:"holder,omitempty"`
	// Swept is what went afterwards: the agents this holder had before and nothing holds now.
	Swept *Swept `json:"swept,omitempty"`
}

func (e *env) newInstallCommand() *cobra.Command {
	var holder string
	cmd := &cobra.Command{
		Use:   "install [--holder ID] DEST",
		Short: "Copy this agent's executable to DEST atomically (mode 0755)",
		Long: `Copies the running executable to DEST through a temporary file in DEST's directory and a
rename, so DEST is never seen half written. Hosts get the agent this way from its image:
  docker run --rm -v ROOT/bin:/out IMAGE install /out/coop-agent-<first 12 hex of the image digest>
Run as root (as in that container), the file is given to the owner of DEST's directory, so
the deploy user who owns ROOT/bin owns its agent. Then DEST's directory's coop-agent, the stable
path the host's services run (watch), is made to name DEST, atomically (a new link renamed over).
With --holder, the install is recorded as one more holder of DEST (DEST's directory's
.holders/NAME/ID+TOKEN), which uninstall --holder ID lets go; and ID's holds on other agents in the
directory end (the holder has moved to DEST), those nothing else holds being removed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if holder != "" && !validHolder(holder) {
				return fmt.Errorf("install: invalid holder %q: letters, digits, '.', '_' and '-', at most 200, starting with a letter or a digit", holder)
			}
			rep, err := install(e.exe, args[0], holder)
			if err != nil {
				return fmt.Errorf("install: %w", err)
			}
			return e.report(rep)
		},
	}
	cmd.Flags().StringVar(&holder, "holder", "", "record this install as held by ID (a stack's host)")
	return cmd
}

// install copies src to dest atomically with InstalledMode, under the lock of dest's directory,
// and records holder's hold on it (none for "").
func install(src, dest, holder string) (InstallReport, error) {
	if src == "" {
		return InstallReport{}, fmt.Errorf("cannot find the agent's own executable")
	}
	in, err := os.Open(src)
	if err != nil {
		return InstallReport{}, err
	}
	defer in.Close()
	dir := filepath.Dir(dest)
	bin, l, err := lockBin(dir)
	if err != nil {
		return InstallReport{}, err
	}
	defer l.Release()
	dirInfo := bin.info
	name := filepath.Base(dest)
	_, statErr := os.Lstat(dest)
	existed, counted := statErr == nil, bin.counted(name)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(dest)+".tmp-*")
	if err != nil {
		return InstallReport{}, err
	}
	defer os.Remove(tmp.Name()) // gone already once renamed
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(tmp, h), in); err != nil {
		tmp.Close()
		return InstallReport{}, err
	}
	if err := tmp.Chmod(InstalledMode); err != nil {
		tmp.Close()
		return InstallReport{}, err
	}
	if os.Geteuid() == 0 {
		if st, ok := dirInfo.Sys().(*syscall.Stat_t); ok {
			if err := tmp.Chown(int(st.Uid), int(st.Gid)); err != nil {
				tmp.Close()
				return InstallReport{}, err
			}
		}
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return InstallReport{}, err
	}
	if err := tmp.Close(); err != nil {
		return InstallReport{}, err
	}
	if err := os.Rename(tmp.Name(), dest); err != nil {
		return InstallReport{}, err
	}
	rep := InstallReport{Path: dest, SHA256: hex.EncodeToString(h.Sum(nil))}
	// An agent that was there uncounted (an older agent installed it), or that is installed
	// uncounted over a counted one, has holders nobody knows: it is kept for good.
	if existed && !counted && holder != "" || counted && holder == "" {
		if _, err := bin.hold(name, unknownHolder); err != nil {
			return rep, fmt.Errorf("%s installed, but its holders could not be recorded: %w", dest, err)
		}
	}
	if holder != "" {
		path, err := bin.newHold(name, holder)
		if err != nil {
			return rep, fmt.Errorf("%s installed, but its holder could not be recorded: %w", dest, err)
		}
		rep.Holder = path
	}
	if name != LinkName {
		link := filepath.Join(dir, LinkName)
		if err := linkAtomic(filepath.Base(dest), link, dirInfo); err != nil {
			return rep, fmt.Errorf("%s installed, but %s could not be made to name it: %w", dest, link, err)
		}
		rep.Link = link
	}
	if holder != "" {
		// The holder has moved to dest: its holds on other agents end.
		for _, other := range bin.countedAgents() {
			if other == name {
				continue
			}
			for range bin.holdsOf(other, holder) {
				if _, err := bin.release(other, holder); err != nil {
					return rep, fmt.Errorf("%s installed, but %s's hold on %s could not be let go: %w", dest, holder, other, err)
				}
			}
		}
		swept, err := bin.sweep()
		if err != nil {
			return rep, fmt.Errorf("%s installed, but removing the agents nothing holds failed: %w", dest, err)
		}
		rep.Swept = &swept
	}
	return rep, nil
}

// UninstallReport is what `uninstall` prints.
type UninstallReport struct {
	Path string `json:"path"`
	// Released is the holder file let go; "" when the holder held nothing there.
	Released string `json:"released"`
	// Removed is true when the agent is gone (now, or before).
	Removed bool `json:"removed"`
	// Kept says why the agent is still there.
	Kept  string `json:"kept,omitempty"`
	Swept Swept  `json:"swept"`
}

func (e *env) newUninstallCommand() *cobra.Command {
	var holder string
	cmd := &cobra.Command{
		Use:   "uninstall --holder ID DEST",
		Short: "Let ID's install of the agent DEST go, and remove DEST once nothing holds it",
		Long: `Removes one of ID's holds on DEST (recorded by install --holder ID), then every agent in
DEST's directory that nothing holds and the stable link (coop-agent) does not name. The agent the
link names goes too, with the link, once nothing at all is left there (no other agent, no holder).
An agent installed before holders were recorded is never removed. Any agent may run it, the
one being removed included.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !validHolder(holder) {
				return fmt.Errorf("uninstall: --holder: invalid holder %q: letters, digits, '.', '_' and '-', at most 200, starting with a letter or a digit", holder)
			}
			rep, err := uninstall(args[0], holder)
			if err != nil {
				return fmt.Errorf("uninstall: %w", err)
			}
			return e.report(rep)
		},
	}
	cmd.Flags().StringVar(&holder, "holder", "", "the holder whose install is let go (required)")
	return cmd
}

// uninstall lets one of holder's holds on dest go and sweeps dest's directory.
func uninstall(dest, holder string) (UninstallReport, error) {
	rep := UninstallReport{Path: dest}
	dir := filepath.Dir(dest)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		rep.Removed, rep.Swept = true, Swept{Agents: []string{}}
		return rep, nil
	}
	bin, l, err := lockBin(dir)
	if err != nil {
		return rep, err
	}
	defer l.Release()
	name := filepath.Base(dest)
	if rep.Released, err = bin.release(name, holder); err != nil {
		return rep, err
	}
	if rep.Swept, err = bin.sweep(); err != nil {
		return rep, err
	}
	rep.Kept = bin.keptBecause(name)
	rep.Removed = rep.Kept == ""
	return rep, nil
}

// linkAtomic makes link a symbolic link to target (relative to link's directory), replacing
// what is there in one rename: the link always names one agent or the other.
func linkAtomic(target, link string, dirInfo os.FileInfo) error {
	tmp := fmt.Sprintf("%s.tmp-%d", link, os.Getpid())
	_ = os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	if os.Geteuid() == 0 {
		if st, ok := dirInfo.Sys().(*syscall.Stat_t); ok {
			if err := os.Lchown(tmp, int(st.Uid), int(st.Gid)); err != nil {
				os.Remove(tmp)
				return err
			}
		}
	}
	if err := os.Rename(tmp, link); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
