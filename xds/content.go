package xds

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
)

// Resources is one complete set of Envoy resources keyed by type URL (resource.ListenerType, ...).
type Resources map[resource.Type][]types.Resource

// content is a validated Resources indexed by type URL and resource name.
// Types without resources are absent, so an empty list and a missing key compare equal.
type content map[resource.Type]map[string]types.Resource

// validator is implemented by the generated Envoy protos (protoc-gen-validate).
type validator interface {
	ValidateAll() error
}

// newContent checks res and indexes it. It keeps res's protos, not copies: copying every
// resource of a large configuration took a quarter of a reload's time, and the translator
// builds new protos for every configuration and never touches them afterwards. Check's callers
// hand the protos over (see Check).
func newContent(res Resources) (content, error) {
	out := make(content, len(res))
	var errs []error
	for _, typeURL := range slices.Sorted(maps.Keys(res)) {
		list := res[typeURL]
		if cache.GetResponseType(typeURL) == types.UnknownType {
			errs = append(errs, fmt.Errorf("unknown resource type %q", typeURL))
			continue
		}
		if len(list) == 0 {
			continue
		}
		byName := make(map[string]types.Resource, len(list))
		for i, r := range list {
			if err := checkResource(typeURL, r, byName); err != nil {
				errs = append(errs, fmt.Errorf("%s[%d]: %w", typeURL, i, err))
				continue
			}
			byName[cache.GetResourceName(r)] = r
		}
		out[typeURL] = byName
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := checkSecretRefs(out); err != nil {
		return nil, err
	}
	return out, nil
}

func checkResource(typeURL string, r types.Resource, seen map[string]types.Resource) error {
	if r == nil {
		return errors.New("nil resource")
	}
	if got := resource.APITypePrefix + string(r.ProtoReflect().Descriptor().FullName()); got != typeURL {
		return fmt.Errorf("resource of type %q listed under the wrong type", got)
	}
	name := cache.GetResourceName(r)
	if name == "" {
		return errors.New("resource has no name")
	}
	if _, dup := seen[name]; dup {
		return fmt.Errorf("duplicate resource name %q", name)
	}
	// Envoy would reject these anyway; failing here names the resource and keeps the bad
	// generation from ever being published.
	if v, ok := r.(validator); ok {
		if err := v.ValidateAll(); err != nil {
			return fmt.Errorf("resource %q: %w", name, err)
		}
	}
	return nil
}

// equal reports whether c and other hold the same resources, regardless of order.
func (c content) equal(other content) bool {
	if len(c) != len(other) {
		return false
	}
	for typeURL, mine := range c {
		theirs, ok := other[typeURL]
		if !ok || len(mine) != len(theirs) {
			return false
		}
		for name, r := range mine {
			o, ok := theirs[name]
			if !ok || !proto.Equal(r, o) {
				return false
			}
		}
	}
	return true
}

// names returns the sorted names of the resources of one type.
func (c content) names(typeURL string) []string {
	return slices.Sorted(maps.Keys(c[typeURL]))
}

// snapshot builds the cache snapshot for this content at version and checks its consistency.
func (c content) snapshot(version string) (*cache.Snapshot, error) {
	byType := make(map[resource.Type][]types.Resource, int(types.UnknownType))
	// Every type gets an entry, even an empty one, so that each carries the version: the cache
	// answers a request only when its version differs from the snapshot's, and a type missing
	// from the snapshot has version "", the same as Envoy's first request. Envoy would then wait
	// for its initial fetch timeout before finishing start-up.
	for rt := types.ResponseType(0); rt < types.UnknownType; rt++ {
		typeURL, err := cache.GetResponseTypeURL(rt)
		if err != nil {
			return nil, err
		}
		list := make([]types.Resource, 0, len(c[typeURL]))
		for _, name := range c.names(typeURL) {
			list = append(list, c[typeURL][name])
		}
		byType[typeURL] = list
	}
	snap, err := cache.NewSnapshot(version, byType)
	if err != nil {
		return nil, fmt.Errorf("build snapshot: %w", err)
	}
	if err := snap.Consistent(); err != nil {
		return nil, fmt.Errorf("inconsistent snapshot: %w", err)
	}
	return snap, nil
}
