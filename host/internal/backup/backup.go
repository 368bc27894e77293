// Package backup is a co-op's database dump before its migrations run, kept off the host in an
// S3-compatible bucket (DigitalOcean Spaces on the cloud stacks, versitygw on the local one),
// and its restore on a rollback.
//
// pg_dump and pg_restore run in a one-off container of the coop-pgtools image (the hosts have
// only Docker), on the co-op's network, as the app reaches its database. The database URL
// reaches them as libpq's PG* variables through the engine API (as `docker run --env-file`
// does): no secret is ever an argument, a command's text or a log line. A dump is in pg_dump's
// custom format: compressed, and restorable object by object (pg_restore), which a plain SQL
// dump is not.
package backup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"coop/host/internal/engine"
	"coop/host/internal/objstore"
	"coop/host/internal/release"
)

// Engine is what a backup needs of the Docker engine.
type Engine interface {
	engine.Puller
	RunToCompletion(ctx context.Context, spec engine.Spec) (int, []byte, error)
}

// WorkDir is where a dump waits on the host between the container and the store
// (ROOT/coops/ID/backup, 0700), emptied after each use.
const WorkDir = "backup"

// Suffix of every dump's key.
const Suffix = ".dump"

// Metadata names (x-amz-meta-*) on each dump: which release it preceded and which one served.
const (
	MetaCoop   = "coop-id"
	MetaBefore = "coop-before" // the release whose migrations came after the dump
	MetaLive   = "coop-live"   // the release that served the data dumped
	MetaDeploy = "coop-deploy" // the deploy's id
	MetaTime   = "coop-time"
)

// ContainerName is the one-off dump or restore container of a co-op.
func ContainerName(coop string) string { return "coop-" + coop + "-pgtools" }

// Prefix is where a co-op's dumps are in the bucket: PREFIX/COOP/.
func Prefix(s release.Store, coop string) string {
	if s.Prefix == "" {
		return coop + "/"
	}
	return s.Prefix + "/" + coop + "/"
}

// StoreOf is the bucket of a backup section.
func StoreOf(b release.Backup) *objstore.Store {
	return &objstore.Store{Endpoint: b.Store.Endpoint, Region: b.Store.Region, Bucket: b.Store.Bucket, AccessKeyID: b.Store.AccessKeyID, SecretAccessKey: b.Store.SecretAccessKey}
}

// Maker takes and restores dumps.
type Maker struct {
	Engine Engine
	Log    func(format string, args ...any)
	Sleep  func(ctx context.Context, d time.Duration) error
	Now    func() time.Time
}

// Taken is a dump stored: its key and what it preceded.
type Taken struct {
	Key    string `json:"key"`
	Bytes  int64  `json:"bytes"`
	Before string `json:"before"`
	Live   string `json:"live"`
}

// Take dumps the co-op's database (before rel's migrations; live is the image serving) into the
// store, then keeps the newest b.Keep dumps of the co-op. The dump is on the store when it
// returns nil; pruning older ones is best effort (a warning).
func (m *Maker) Take(ctx context.Context, rel release.Release, dir, live, deployID string) (Taken, error) {
	b := rel.Backup
	if b == nil {
		return Taken{}, errors.New("the release has no backup section")
	}
	db, err := release.ParseDatabaseURL(b.Database)
	if err != nil {
		return Taken{}, fmt.Errorf("release.backup.database %v", err)
	}
	if err := engine.EnsureImage(ctx, m.Engine, b.Image, engine.PullAttempts, m.sleep, m.log); err != nil {
		return Taken{}, err
	}
	work, err := emptyWorkDir(dir)
	if err != nil {
		return Taken{}, err
	}
	defer os.RemoveAll(work)
	spec := engine.Spec{
		Name:    ContainerName(rel.Coop),
		Image:   b.Image,
		Cmd:     []string{"pg_dump", "--format=custom", "--no-owner", "--no-privileges", "--file=/backup/dump"},
		Env:     db.Env(),
		Labels:  map[string]string{"coop.managed": "true", "coop.id": rel.Coop, "coop.role": "backup"},
		Network: rel.Network,
		Mounts:  []engine.Mount{{HostDir: work, Target: "/backup"}},
	}
	code, out, err := m.Engine.RunToCompletion(ctx, spec)
	if err != nil {
		return Taken{}, fmt.Errorf("could not run pg_dump: %w", err)
	}
	if code != 0 {
		return Taken{}, fmt.Errorf("pg_dump exited %d: %s", code, lastLine(out))
	}
	file := filepath.Join(work, "dump")
	info, err := os.Stat(file)
	if err != nil || info.Size() == 0 {
		return Taken{}, fmt.Errorf("pg_dump exited 0 but wrote no dump")
	}
	now := m.now().UTC()
	key := Prefix(b.Store, rel.Coop) + now.Format("20060102T150405.000Z") + "-" + shortDigest(rel.Image) + Suffix
	meta := map[string]string{MetaCoop: rel.Coop, MetaBefore: rel.Image, MetaLive: live, MetaDeploy: deployID, MetaTime: now.Format(time.RFC3339)}
	store := StoreOf(*b)
	if err := store.PutFile(ctx, key, file, meta); err != nil {
		return Taken{}, fmt.Errorf("storing the dump in %s/%s: %w", b.Store.Bucket, key, err)
	}
	if err := m.prune(ctx, store, Prefix(b.Store, rel.Coop), b.Keep); err != nil {
		m.log("warning: keeping the newest %d backups of %s: %v (the new one is stored)", b.Keep, rel.Coop, err)
	}
	return Taken{Key: key, Bytes: info.Size(), Before: rel.Image, Live: live}, nil
}

// prune deletes the co-op's dumps beyond the newest keep (keys sort by time).
func (m *Maker) prune(ctx context.Context, store *objstore.Store, prefix string, keep int) error {
	list, err := store.List(ctx, prefix)
	if err != nil {
		return err
	}
	var dumps []string
	for _, o := range list {
		if strings.HasSuffix(o.Key, Suffix) {
			dumps = append(dumps, o.Key)
		}
	}
	sort.Strings(dumps)
	for len(dumps) > keep {
		if err := store.Delete(ctx, dumps[0]); err != nil {
			return err
		}
		dumps = dumps[1:]
	}
	return nil
}

// Entry is a stored dump with what it preceded.
type Entry struct {
	Key    string `json:"key"`
	Bytes  int64  `json:"bytes"`
	Time   string `json:"time"`
	Before string `json:"before"`
	Live   string `json:"live"`
	Deploy string `json:"deployId"`
}

// List is the co-op's stored dumps, oldest first.
func List(ctx context.Context, b release.Backup, coop string) ([]Entry, error) {
	store := StoreOf(b)
	list, err := store.List(ctx, Prefix(b.Store, coop))
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, o := range list {
		if !strings.HasSuffix(o.Key, Suffix) {
			continue
		}
		meta, err := store.Head(ctx, o.Key)
		if objstore.NotFound(err) {
			continue // pruned meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, Entry{Key: o.Key, Bytes: o.Size, Time: meta[MetaTime], Before: meta[MetaBefore], Live: meta[MetaLive], Deploy: meta[MetaDeploy]})
	}
	return out, nil
}

// Restore replaces the co-op's database with the dump at key: in one transaction, everything
// the co-op's user owns is dropped and the dump's objects are made again (so tables a later
// migration added go too). The caller holds the co-op's traffic and stops its app first.
func (m *Maker) Restore(ctx context.Context, b release.Backup, coop, network, dir, key string) error {
	if !strings.HasPrefix(key, Prefix(b.Store, coop)) || !strings.HasSuffix(key, Suffix) || strings.Contains(key, "..") {
		return fmt.Errorf("%s is not a backup of %s (its keys are %s*%s)", key, coop, Prefix(b.Store, coop), Suffix)
	}
	db, err := release.ParseDatabaseURL(b.Database)
	if err != nil {
		return fmt.Errorf("backup.database %v", err)
	}
	if err := engine.EnsureImage(ctx, m.Engine, b.Image, engine.PullAttempts, m.sleep, m.log); err != nil {
		return err
	}
	work, err := emptyWorkDir(dir)
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	f, err := os.OpenFile(filepath.Join(work, "restore.dump"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if err := StoreOf(b).Get(ctx, key, f); err != nil {
		f.Close()
		return fmt.Errorf("fetching %s/%s: %w", b.Store.Bucket, key, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	// The script's text holds no secret: libpq reads the connection from PG*.
	script := `set -e; { echo 'DROP OWNED BY CURRENT_USER;'; pg_restore --no-owner --no-privileges --file=- /backup/restore.dump; } > /backup/restore.sql; psql --no-psqlrc --quiet --set=ON_ERROR_STOP=1 --single-transaction --file=/backup/restore.sql`
	spec := engine.Spec{
		Name:    ContainerName(coop),
		Image:   b.Image,
		Cmd:     []string{"/bin/sh", "-c", script},
		Env:     db.Env(),
		Labels:  map[string]string{"coop.managed": "true", "coop.id": coop, "coop.role": "restore"},
		Network: network,
		Mounts:  []engine.Mount{{HostDir: work, Target: "/backup"}},
	}
	code, out, err := m.Engine.RunToCompletion(ctx, spec)
	if err != nil {
		return fmt.Errorf("could not run pg_restore: %w", err)
	}
	if code != 0 {
		return fmt.Errorf("the restore exited %d (nothing was changed: one transaction): %s", code, lastLine(out))
	}
	return nil
}

func emptyWorkDir(dir string) (string, error) {
	work := filepath.Join(dir, WorkDir)
	if err := os.RemoveAll(work); err != nil {
		return "", err
	}
	if err := os.MkdirAll(work, 0o700); err != nil {
		return "", err
	}
	return work, nil
}

func shortDigest(image string) string {
	_, d, ok := strings.Cut(image, "@sha256:")
	if !ok || len(d) < 12 {
		return "image"
	}
	return d[:12]
}

func lastLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

func (m *Maker) log(format string, args ...any) {
	if m.Log != nil {
		m.Log(format, args...)
	}
}

func (m *Maker) sleep(ctx context.Context, d time.Duration) error {
	if m.Sleep != nil {
		return m.Sleep(ctx, d)
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func (m *Maker) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}
