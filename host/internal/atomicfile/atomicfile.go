// Package atomicfile writes the agent's files whole or not at all: a reader (another agent run,
// the host's watch, a person) sees the old content or the new, never a part.
package atomicfile

import (
	"os"
	"path/filepath"
)

// Write puts data at path with mode: a temp file beside it, then a rename over it. On an error
// the file at path is unchanged and no temp file is left.
func Write(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // gone already once renamed
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
