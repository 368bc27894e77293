package cmd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"

	"coop/host/internal/flock"
)

// Who holds an installed agent. Several stacks may install the same agent (the same path, named
// by the image's digest) on one host, and a stack's `up --replace` installs it again before the
// old install is removed: removing an agent must not take away a binary something still runs
// by its path. Each install by a holder (a stack's host, as the program names it) records
//
//	DIR/.holders/AGENT/HOLDER+TOKEN
//
// TOKEN being new for each install, and `uninstall` removes one of the holder's files only; an
// agent goes when no file holds it and the stable link does not name it (or nothing else at all
// is left on the host: no agent, no holder, then the link goes too). An agent that was in place
// before anything recorded its holders (installed by an older agent) was not counted: it is
// marked held for good (unknownHolder), as is an agent installed without a holder over a
// counted one. Leaking a few megabytes is safe; removing what a stack runs is not. All of it is
// done holding DIR's own lock (flock(2) on the directory), so that an install and an uninstall
// on one host take turns.
const (
	// HoldersDir is the holders' directory in the agents' directory.
	HoldersDir = ".holders"
	// unknownHolder marks an agent whose holders are not known: it is never removed.
	unknownHolder = ".unknown"
	// holderSep separates a holder from its install's token in a holder file's name.
	holderSep = "+"
	// binLockWait bounds the wait for another install or uninstall on the host.
	binLockWait = 5 * time.Minute
)

var holderPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$`)

// validHolder says whether h may name a holder: letters, digits, '.', '_' and '-', at most 200,
// starting with a letter or a digit.
func validHolder(h string) bool { return holderPattern.MatchString(h) }

// binDir is the agents' directory, its lock held.
type binDir struct {
	dir  string
	info os.FileInfo // the directory's, whose owner is given what is made in it when run as root
}

// lockBin takes dir's lock.
func lockBin(dir string) (*binDir, *flock.Lock, error) {
	info, err := os.Stat(dir)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), binLockWait)
	defer cancel()
	l, err := flock.Acquire(ctx, dir, flock.Exclusive)
	if err != nil {
		return nil, nil, fmt.Errorf("waiting for another install or uninstall on this host: %w", err)
	}
	return &binDir{dir: dir, info: info}, l, nil
}

func (b *binDir) holders(agent string) string { return filepath.Join(b.dir, HoldersDir, agent) }

// giveToOwner gives path to the directory's owner when run as root (as install is, in its
// container), so that the deploy user's uninstall can remove it.
func (b *binDir) giveToOwner(path string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	if st, ok := b.info.Sys().(*syscall.Stat_t); ok {
		return os.Lchown(path, int(st.Uid), int(st.Gid))
	}
	return nil
}

// mkdirOwned makes path (and HoldersDir above it) when missing.
func (b *binDir) mkdirOwned(path string) error {
	for _, d := range []string{filepath.Dir(path), path} {
		if err := os.Mkdir(d, 0o755); err != nil {
			if errors.Is(err, fs.ErrExist) {
				continue
			}
			return err
		}
		if err := b.giveToOwner(d); err != nil {
			return err
		}
	}
	return nil
}

// counted says whether agent's holders are recorded (its holders' directory is there).
func (b *binDir) counted(agent string) bool {
	st, err := os.Stat(b.holders(agent))
	return err == nil && st.IsDir()
}

// hold records a holder file named name for agent; returns its path.
func (b *binDir) hold(agent, name string) (string, error) {
	dir := b.holders(agent)
	if err := b.mkdirOwned(dir); err != nil {
		return "", err
	}
	path := filepath.Join(dir, name)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return "", err
	}
	_, werr := fmt.Fprintf(f, "installed=%d\npid=%d\n", time.Now().Unix(), os.Getpid())
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return "", werr
	}
	return path, b.giveToOwner(path)
}

// newHold records one more install of agent by holder.
func (b *binDir) newHold(agent, holder string) (string, error) {
	token := make([]byte, 8)
	if _, err := rand.Read(token); err != nil {
		return "", err
	}
	return b.hold(agent, holder+holderSep+hex.EncodeToString(token))
}

// holdsOf is the names of holder's files for agent, sorted.
func (b *binDir) holdsOf(agent, holder string) []string {
	entries, _ := os.ReadDir(b.holders(agent))
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), holder+holderSep) {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out
}

// release removes one of holder's files for agent; "" when it had none.
func (b *binDir) release(agent, holder string) (string, error) {
	for _, name := range b.holdsOf(agent, holder) {
		path := filepath.Join(b.holders(agent), name)
		err := os.Remove(path)
		if err == nil {
			return path, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
	}
	return "", nil
}

// countedAgents is the agents whose holders are recorded.
func (b *binDir) countedAgents() []string {
	entries, _ := os.ReadDir(filepath.Join(b.dir, HoldersDir))
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out
}

// held says whether any file holds agent.
func (b *binDir) held(agent string) bool {
	entries, err := os.ReadDir(b.holders(agent))
	return err != nil || len(entries) > 0 // unreadable: held, to be safe
}

// linked is the agent the stable link names ("" for none).
func (b *binDir) linked() string {
	target, err := os.Readlink(filepath.Join(b.dir, LinkName))
	if err != nil {
		return ""
	}
	return filepath.Base(target)
}

// alone says whether agent is all that is left in the directory: no other file but the link
// (and hidden ones, such as temporary files), and no holder of any agent.
func (b *binDir) alone(agent string) bool {
	entries, err := os.ReadDir(b.dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		n := e.Name()
		if n == agent || n == LinkName || strings.HasPrefix(n, ".") || strings.HasPrefix(n, LinkName+".tmp-") {
			continue
		}
		return false
	}
	for _, a := range b.countedAgents() {
		if b.held(a) {
			return false
		}
	}
	return true
}

// exists says whether there is a file at p (a link that names nothing included).
func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// Swept is what a sweep removed.
type Swept struct {
	Agents []string `json:"agents"`
	// Link is true when the stable link went too (nothing else was left).
	Link bool `json:"link"`
}

// sweep removes every counted agent that nothing holds and that the link does not name, then
// the agent the link names when it is counted, unheld and all that is left (and the link with
// it), then the holders' directory once empty.
func (b *binDir) sweep() (Swept, error) {
	swept := Swept{Agents: []string{}}
	linked := b.linked()
	remove := func(agent string) error {
		if err := os.Remove(filepath.Join(b.dir, agent)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := os.Remove(b.holders(agent)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		swept.Agents = append(swept.Agents, filepath.Join(b.dir, agent))
		return nil
	}
	for _, agent := range b.countedAgents() {
		if agent == linked || b.held(agent) {
			continue
		}
		if err := remove(agent); err != nil {
			return swept, err
		}
	}
	if linked != "" && !exists(filepath.Join(b.dir, linked)) && b.alone(linked) {
		// The link names nothing (its agent was removed by hand or by an older uninstall) and
		// nothing else is left: it goes.
		if err := os.Remove(filepath.Join(b.dir, LinkName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return swept, err
		}
		swept.Link = true
	} else if linked != "" && b.counted(linked) && !b.held(linked) && b.alone(linked) {
		if err := os.Remove(filepath.Join(b.dir, LinkName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return swept, err
		}
		swept.Link = true
		if err := remove(linked); err != nil {
			return swept, err
		}
	}
	if err := os.Remove(filepath.Join(b.dir, HoldersDir)); err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTEMPTY) && !errors.Is(err, syscall.EEXIST) {
		return swept, err
	}
	return swept, nil
}

// keptBecause says why agent is still there after a sweep ("" when it is not).
func (b *binDir) keptBecause(agent string) string {
	if _, err := os.Lstat(filepath.Join(b.dir, agent)); err != nil {
		return ""
	}
	switch {
	case !b.counted(agent):
		return "installed before its holders were recorded"
	case b.held(agent):
		if _, err := os.Stat(filepath.Join(b.holders(agent), unknownHolder)); err == nil {
			return "installed before its holders were recorded"
		}
		return "another holder still has it"
	default:
		return "the host's current agent (" + LinkName + " names it)"
	}
}
