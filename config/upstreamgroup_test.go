package config

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func groupDoc(name string, dests ...string) string {
	return fmt.Sprintf(`apiVersion: portico.dev/v1
kind: UpstreamGroup
metadata: {name: %s}
spec:
  destinations: [%s]
`, name, strings.Join(dests, ", "))
}

func vsGroupDoc(name, domain, group string) string {
	return fmt.Sprintf(`apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: %s}
spec:
  domains: [%s]
  routes:
  - match: {prefix: /}
    upstreamGroup: %s
`, name, domain, group)
}

// A VirtualService naming a missing UpstreamGroup is its own problem: it alone is held back,
// with a message naming the groups that exist, and the rest of the change is served.
func TestIsolationRejectsOnlyVirtualServiceWithMissingGroup(t *testing.T) {
	split := groupDoc("split", "{upstream: a, weight: 3}", "{upstream: b, weight: 1}")
	iso := mustIsolate(t, nil, isoFiles(split,
		vsGroupDoc("shop", "shop.example.com", "splt"), vsGroupDoc("blog", "blog.example.com", "split")))
	if got := rejectedNames(iso); !slices.Equal(got, []string{"VirtualService/shop kept=false"}) {
		t.Fatalf("rejected %v, want only shop", got)
	}
	msg := iso.Rejected[0].Problems.Error()
	for _, want := range []string{"all.yaml:", `UpstreamGroup "splt" is not defined (defined: split)`, `did you mean "split"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("problem %q does not contain %q", msg, want)
		}
	}
	if len(iso.Config.VirtualServices) != 1 || iso.Config.VirtualServices[0].Metadata.Name != "blog" {
		t.Errorf("served %v, want blog only", served(iso.Config))
	}
	if got := iso.Config.RouteDestinations(&iso.Config.VirtualServices[0].Spec.Routes[0]); len(got) != 2 || got[0].Weight != 3 {
		t.Errorf("blog's route resolves to %v, want the group's two destinations", got)
	}
}

// A broken UpstreamGroup is shared infrastructure, like an Upstream: no single VirtualService
// is to blame, so the whole change is rejected, attributed to the group.
func TestIsolationRejectsWholeChangeForBrokenGroup(t *testing.T) {
	broken := groupDoc("split", "{upstream: a, weight: 3}", "{upstream: nowhere, weight: 1}")
	_, err := LoadIsolated(nil, isoFiles(broken, vsGroupDoc("shop", "shop.example.com", "split")))
	if err == nil {
		t.Fatal("LoadIsolated accepted a group with an undefined Upstream")
	}
	if msg := err.Error(); !strings.Contains(msg, `UpstreamGroup "split" spec.destinations[1].upstream: Upstream "nowhere" is not defined`) {
		t.Errorf("error does not attribute the problem to the group: %s", msg)
	}
}
