package controller

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/portico-gw/portico/config"
)

// lastGoodFile is the name of the last known good configuration in the state directory.
const lastGoodFile = "last-known-good.json"

// LastGood is the last configuration Envoy accepted: the files that produced it, as they were,
// and its generation.
type LastGood struct {
	Generation uint64    `json:"generation"`
	SavedAt    time.Time `json:"savedAt"`
	// Source is Options.SourceID of the run that saved it.
	Source string              `json:"source"`
	Files  []config.SourceFile `json:"files"`
}

// ReadLastGood reads the last known good configuration from stateDir; nil, nil when there is
// none yet.
func ReadLastGood(stateDir string) (*LastGood, error) {
	data, err := os.ReadFile(filepath.Join(stateDir, lastGoodFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read last known good configuration: %w", err)
	}
	var lg LastGood
	if err := json.Unmarshal(data, &lg); err != nil {
		return nil, fmt.Errorf("read last known good configuration %s: %w", filepath.Join(stateDir, lastGoodFile), err)
	}
	return &lg, nil
}

// writeLastGood saves lg atomically: a crash leaves either the old file or the new one, never
// half of one, because the data is synced to a temporary file that is then renamed over it.
func writeLastGood(stateDir string, lg *LastGood) error {
	data, err := json.MarshalIndent(lg, "", "  ")
	if err != nil {
		return fmt.Errorf("encode last known good configuration: %w", err)
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return fmt.Errorf("create state directory: %w", err)
	}
	tmp, err := os.CreateTemp(stateDir, lastGoodFile+".*")
	if err != nil {
		return fmt.Errorf("save last known good configuration: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("save last known good configuration: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("save last known good configuration: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save last known good configuration: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(stateDir, lastGoodFile)); err != nil {
		return fmt.Errorf("save last known good configuration: %w", err)
	}
	return nil
}
