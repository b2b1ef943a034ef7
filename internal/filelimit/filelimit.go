// Package filelimit reads files that configuration names (credentials, certificates, key sets)
// without trusting their size: a wrong path to a device, a FIFO or a file still growing must
// fail fast rather than fill memory. It only reads; it does not parse, log or watch.
package filelimit

import (
	"fmt"
	"io"
	"os"
)

// TooLargeError says that a file holds more than the limit its reader set.
type TooLargeError struct {
	Path  string
	Limit int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%s holds more than %d bytes; is it the right file?", e.Path, e.Limit)
}

// Read returns the content of the file at path, or a *TooLargeError when it holds more than
// limit bytes. It reads at most limit+1 bytes whatever the file claims its size is. Errors
// opening or reading the file are returned as the os package gives them, so errors.Is works
// with fs.ErrNotExist and fs.ErrPermission.
func Read(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, &TooLargeError{Path: path, Limit: limit}
	}
	return data, nil
}
