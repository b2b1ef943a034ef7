package config

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

// TestShadowIndexAgreesWithPairwise checks the index against the definition it speeds up:
// for random route lists, the first earlier route that covers each route, found by comparing
// every pair, is the one the index returns.
func TestShadowIndexAgreesWithPairwise(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	paths := []string{"/", "/a", "/a/", "/a/b", "/A", "/A/b", "/b", "/ab", "/a/bc"}
	kinds := []string{"prefix", "prefix", "exact", "regex"}
	for round := 0; round < 500; round++ {
		var idx shadowIndex
		var earlier []pathMatch
		for i := 0; i < 12; i++ {
			m := pathMatch{
				path:          strconv.Itoa(i),
				kind:          kinds[r.IntN(len(kinds))],
				value:         paths[r.IntN(len(paths))],
				caseSensitive: r.IntN(3) > 0,
				partial:       r.IntN(5) == 0,
			}
			if m.kind == "regex" {
				m.value += ".*"
				m.caseSensitive = true
			}
			want := -1
			for j, e := range earlier {
				if e.covers(m) {
					want = j
					break
				}
			}
			got, ok := idx.coveredBy(m)
			switch {
			case want < 0 && ok:
				t.Fatalf("round %d: index says %v covers %v; pairwise says nothing does", round, got, m)
			case want >= 0 && !ok:
				t.Fatalf("round %d: pairwise says %v covers %v; index found nothing", round, earlier[want], m)
			case want >= 0 && got != earlier[want]:
				t.Fatalf("round %d: index returned %v, pairwise the earlier %v, for %v", round, got, earlier[want], m)
			}
			earlier = append(earlier, m)
			idx.add(m)
		}
	}
}
