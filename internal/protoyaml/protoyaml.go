// Package protoyaml renders protobuf messages as stable, readable YAML in the style of Envoy's
// own examples: snake_case field names in proto order, two-space indent. It serves golden files,
// `portico bootstrap` and config dumps, and does no I/O.
package protoyaml

import (
	"bytes"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"gopkg.in/yaml.v3"
)

// Marshal renders msg as one YAML document.
func Marshal(msg proto.Message) ([]byte, error) {
	n, err := node(msg)
	if err != nil {
		return nil, err
	}
	return encode(n)
}

// MarshalList renders several messages as one YAML list, in the order given.
func MarshalList[T proto.Message](msgs []T) ([]byte, error) {
	seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	for _, m := range msgs {
		n, err := node(m)
		if err != nil {
			return nil, err
		}
		seq.Content = append(seq.Content, n)
	}
	return encode(seq)
}

// node converts msg to a YAML node tree. protojson deliberately varies its whitespace between
// runs, so its output is re-read as YAML (JSON is YAML), which keeps the field order and lets
// the encoder fix the layout.
func node(msg proto.Message) (*yaml.Node, error) {
	js, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("encode %T as json: %w", msg, err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(js, &doc); err != nil {
		return nil, fmt.Errorf("re-read %T json: %w", msg, err)
	}
	plainStyle(&doc)
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		return doc.Content[0], nil
	}
	return &doc, nil
}

// plainStyle drops the JSON quoting and flow style the parser recorded. The encoder still
// quotes any string that would otherwise read back as another type, so meaning is unchanged.
func plainStyle(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		plainStyle(c)
	}
}

func encode(n *yaml.Node) ([]byte, error) {
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return nil, fmt.Errorf("encode yaml: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode yaml: %w", err)
	}
	return out.Bytes(), nil
}
