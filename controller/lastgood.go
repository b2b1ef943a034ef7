package controller

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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

// writeLastGood saves lg atomically.
func writeLastGood(stateDir string, lg *LastGood) error {
	data, err := json.MarshalIndent(lg, "", "  ")
	if err != nil {
		return fmt.Errorf("encode last known good configuration: %w", err)
	}
	if err := writeAtomic(stateDir, lastGoodFile, data); err != nil {
		return fmt.Errorf("save last known good configuration: %w", err)
	}
	return nil
}

// generationFile holds the last generation pushed, so that numbering continues after a restart
// even when the newest generations were not saved as last known good (partially applied ones).
const generationFile = "generation"

func readGeneration(stateDir string) (uint64, error) {
	data, err := os.ReadFile(filepath.Join(stateDir, generationFile))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read last generation: %w", err)
	}
	gen, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("read last generation from %s: %w", filepath.Join(stateDir, generationFile), err)
	}
	return gen, nil
}

func writeGeneration(stateDir string, gen uint64) error {
	if err := writeAtomic(stateDir, generationFile, []byte(strconv.FormatUint(gen, 10)+"\n")); err != nil {
		return fmt.Errorf("save last generation: %w", err)
	}
	return nil
}

// writeAtomic replaces dir/name with data: a crash leaves either the old file or the new one,
// never half of one, because the data is synced to a temporary file that is then renamed.
func writeAtomic(dir, name string, data []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, name+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, name))
}
