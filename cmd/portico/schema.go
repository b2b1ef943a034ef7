package main

import (
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"

	"github.com/spf13/cobra"

	"github.com/portico-gw/portico/config"
)

func newSchemaCmd(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of the configuration, for editor completion and checks",
		Long: `Print a JSON Schema (draft 2020-12) of Portico's configuration documents. Editors that use
yaml-language-server complete and check files with it; add as the first line of a file:

  # yaml-language-server: $schema=./portico.schema.json

after 'portico schema > portico.schema.json'. The schema checks structure only; 'portico
validate' checks everything.`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			out, err := json.MarshalIndent(configSchema(), "", "  ")
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(stdout, "%s\n", out)
			return err
		},
	}
}

// schemaKinds are the documents the schema describes, by kind.
var schemaKinds = []struct {
	kind string
	typ  reflect.Type
}{
	{config.KindGateway, reflect.TypeFor[config.Gateway]()},
	{config.KindVirtualService, reflect.TypeFor[config.VirtualService]()},
	{config.KindRouteTable, reflect.TypeFor[config.RouteTable]()},
	{config.KindUpstream, reflect.TypeFor[config.Upstream]()},
	{config.KindUpstreamGroup, reflect.TypeFor[config.UpstreamGroup]()},
	{config.KindProxy, reflect.TypeFor[config.Proxy]()},
	{config.KindSecret, reflect.TypeFor[config.Secret]()},
}

// schemaOneOf lists, per struct, the fields of which exactly one must be set: the schema's
// rendering of the config package's one-of rules (a route's action, a match's path, an
// Upstream's discovery type, a delegation's target).
var schemaOneOf = map[reflect.Type][]string{
	reflect.TypeFor[config.Route]():        {"upstream", "destinations", "upstreamGroup", "redirect", "directResponse", "delegate"},
	reflect.TypeFor[config.RouteMatch]():   {"prefix", "exact", "regex"},
	reflect.TypeFor[config.UpstreamSpec](): {"static", "dns"},
	reflect.TypeFor[config.Delegate]():     {"name", "selector"},
	reflect.TypeFor[config.ExtAuth]():      {"grpc", "http"},
}

// schemaEnums lists the allowed values of string fields that have a fixed set, by struct and
// yaml name.
var schemaEnums = map[reflect.Type]map[string][]string{
	reflect.TypeFor[config.GatewaySpec](): {"protocol": {config.ProtocolHTTP, config.ProtocolHTTPS, config.ProtocolTCP}},
	reflect.TypeFor[config.GatewayTLS]():  {"minVersion": {config.TLSVersion12, config.TLSVersion13}},
	reflect.TypeFor[config.DNSUpstream](): {"lookupFamily": {config.LookupFamilyV4, config.LookupFamilyV6, config.LookupFamilyAuto}},
	reflect.TypeFor[config.ProxySpec]():   {"logLevel": config.EnvoyLogLevels},
	reflect.TypeFor[config.SecretSpec]():  {"type": {config.SecretTypeAPIKeys, config.SecretTypeHtpasswd, config.SecretTypeTLS, config.SecretTypeAWSCredentials, config.SecretTypeGeneric}},
	reflect.TypeFor[config.ExtAuth]():     {"failureMode": {config.ExtAuthFailureDeny, config.ExtAuthFailureAllow}},
}

type jsonSchema = map[string]any

// configSchema generates the schema from the config types' yaml tags, the same tags the
// decoder reads: a field without omitempty is required, unknown fields are not allowed.
// Descriptions are the types' doc comments (schema_docs.go).
func configSchema() jsonSchema {
	g := schemaGen{defs: jsonSchema{}}
	var kinds []any
	for _, k := range schemaKinds {
		def := g.structSchema(k.typ)
		props := def["properties"].(jsonSchema)
		props["apiVersion"] = jsonSchema{"const": config.APIVersion}
		props["kind"] = jsonSchema{"const": k.kind}
		def["required"] = append([]string{"apiVersion", "kind"}, def["required"].([]string)...)
		g.defs[k.kind] = def
		kinds = append(kinds, jsonSchema{"$ref": "#/$defs/" + k.kind})
	}
	return jsonSchema{
		"$schema": "https://json-schema.org/draft/2020-12/schema",
		"$id":     "https://portico.dev/schema/" + strings.ReplaceAll(config.APIVersion, "/", "-") + ".json",
		"title":   "Portico configuration document (" + config.APIVersion + ")",
		"oneOf":   kinds,
		"$defs":   g.defs,
	}
}

type schemaGen struct {
	defs jsonSchema
}

func (g *schemaGen) typeSchema(t reflect.Type) jsonSchema {
	switch t.Kind() {
	case reflect.Pointer:
		return g.typeSchema(t.Elem())
	case reflect.String:
		return jsonSchema{"type": "string"}
	case reflect.Bool:
		return jsonSchema{"type": "boolean"}
	case reflect.Int, reflect.Int32, reflect.Int64, reflect.Uint32:
		return jsonSchema{"type": "integer"}
	case reflect.Float64:
		return jsonSchema{"type": "number"}
	case reflect.Slice:
		return jsonSchema{"type": "array", "items": g.typeSchema(t.Elem())}
	case reflect.Map:
		return jsonSchema{"type": "object", "additionalProperties": g.typeSchema(t.Elem())}
	case reflect.Struct:
		name := t.Name()
		if _, done := g.defs[name]; !done {
			g.defs[name] = jsonSchema{} // placeholder: types may refer to themselves
			g.defs[name] = g.structSchema(t)
		}
		return jsonSchema{"$ref": "#/$defs/" + name}
	}
	panic(fmt.Sprintf("schema: config type %s has a field of kind %s the schema does not know", t, t.Kind()))
}

func (g *schemaGen) structSchema(t reflect.Type) jsonSchema {
	props := jsonSchema{}
	required := []string{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		if !f.IsExported() || tag == "" || tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		s := g.typeSchema(f.Type)
		if values, ok := schemaEnums[t][name]; ok {
			s["enum"] = values
		}
		if d := schemaDocs[t.Name()+"."+name]; d != "" {
			s["description"] = d
		}
		props[name] = s
		if !strings.Contains(opts, "omitempty") {
			required = append(required, name)
		}
	}
	s := jsonSchema{"type": "object", "properties": props, "required": required, "additionalProperties": false}
	if d := schemaDocs[t.Name()]; d != "" {
		s["description"] = d
	}
	if group, ok := schemaOneOf[t]; ok {
		var alts []any
		for _, name := range group {
			alts = append(alts, jsonSchema{"required": []string{name}})
		}
		s["oneOf"] = alts
	}
	return s
}
