package cmd

import (
	"crypto/sha256"
	"encoding/hex"
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
}

func (e *env) newInstallCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "install DEST",
		Short: "Copy this agent's executable to DEST atomically (mode 0755)",
		Long: `Copies the running executable to DEST through a temporary file in DEST's directory and a
rename, so DEST is never seen half written. Hosts get the agent this way from its image:
  docker run --rm -v ROOT/bin:/out IMAGE install /out/coop-agent-<first 12 hex of the image digest>
Run as root (as in that container), the file is given to the owner of DEST's directory, so
the deploy user who owns ROOT/bin owns its agent. Then DEST's directory's coop-agent, the stable
path the host's services run (watch), is made to name DEST, atomically (a new link renamed over).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rep, err := install(e.exe, args[0])
			if err != nil {
				return fmt.Errorf("install: %w", err)
			}
			return e.report(rep)
		},
	}
}

// install copies src to dest atomically with InstalledMode.
func install(src, dest string) (InstallReport, error) {
	if src == "" {
		return InstallReport{}, fmt.Errorf("cannot find the agent's own executable")
	}
	in, err := os.Open(src)
	if err != nil {
		return InstallReport{}, err
	}
	defer in.Close()
	dir := filepath.Dir(dest)
	dirInfo, err := os.Stat(dir)
	if err != nil {
		return InstallReport{}, err
	}
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
	if filepath.Base(dest) != LinkName {
		link := filepath.Join(dir, LinkName)
		if err := linkAtomic(filepath.Base(dest), link, dirInfo); err != nil {
			return rep, fmt.Errorf("%s installed, but %s could not be made to name it: %w", dest, link, err)
		}
		rep.Link = link
	}
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
