// Package protoyaml renders protobuf messages as stable, readable YAML (proto3 JSON mapping,
// keys sorted), for golden files, `portico bootstrap` and config dumps. It does no I/O.
package protoyaml

import (
	"encoding/json"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"gopkg.in/yaml.v3"
)

// Marshal renders msg as YAML.
func Marshal(msg proto.Message) ([]byte, error) {
	v, err := generic(msg)
	if err != nil {
		return nil, err
	}
	return toYAML(v)
}

// MarshalList renders several messages as one YAML list, in the order given.
func MarshalList[T proto.Message](msgs []T) ([]byte, error) {
	list := make([]any, 0, len(msgs))
	for _, m := range msgs {
		v, err := generic(m)
		if err != nil {
			return nil, err
		}
		list = append(list, v)
	}
	return toYAML(list)
}

// generic converts msg to plain maps and lists. protojson output is deliberately unstable in
// whitespace; going through a generic value makes it stable and sorts the keys.
func generic(msg proto.Message) (any, error) {
	js, err := protojson.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("marshal %T to json: %w", msg, err)
	}
	var v any
	if err := json.Unmarshal(js, &v); err != nil {
		return nil, fmt.Errorf("reparse %T json: %w", msg, err)
	}
	return v, nil
}

func toYAML(v any) ([]byte, error) {
	out, err := yaml.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("marshal to yaml: %w", err)
	}
	return out, nil
}
