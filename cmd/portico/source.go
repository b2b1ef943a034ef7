package main

import (
	_ "embed"
	"errors"
	"fmt"
	"os"

	"github.com/portico-gw/portico/config"
	"github.com/portico-gw/portico/controller"
)

//go:embed demo.yaml
var demoConfig []byte

// defaultConfigFile is read when no -c is given.
const defaultConfigFile = "portico.yaml"

// configSource says where the configuration comes from: the user's paths, ./portico.yaml, or
// the embedded demo. Watch is empty for the demo, which never changes.
type configSource struct {
	Read  controller.ReadFunc
	Watch []string
	Desc  string
}

func resolveConfig(paths []string) (configSource, error) {
	if len(paths) == 0 {
		if _, err := os.Stat(defaultConfigFile); err == nil {
			paths = []string{defaultConfigFile}
		} else if !errors.Is(err, os.ErrNotExist) {
			return configSource{}, fmt.Errorf("check for %s: %w", defaultConfigFile, err)
		}
	}
	if len(paths) == 0 {
		return configSource{
			Read: func() ([]config.SourceFile, error) {
				return []config.SourceFile{{Name: "demo.yaml", Data: string(demoConfig)}}, nil
			},
			Desc: "the built-in demo configuration (give -c FILE or write ./portico.yaml to use your own)",
		}, nil
	}
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			return configSource{}, usageError{fmt.Errorf("config path %s: %w", p, err)}
		}
	}
	return configSource{
		Read:  func() ([]config.SourceFile, error) { return config.ReadFiles(paths...) },
		Watch: paths,
		Desc:  fmt.Sprint(paths),
	}, nil
}
