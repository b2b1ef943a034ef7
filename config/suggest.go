package config

import (
	"fmt"
	"strings"
)

// closest returns the candidate the user most likely meant by name, or "" when none is close.
// Case is ignored, and a candidate containing the name (or contained in it) counts as close,
// so "port" suggests "bindPort".
func closest(name string, candidates []string) string {
	if len(name) > maxSuggestLen {
		return ""
	}
	lower := strings.ToLower(name)
	best, bestDist := "", -1
	for _, c := range candidates {
		lc := strings.ToLower(c)
		dist := editDistance(lower, lc)
		near := dist <= max(1, len(lower)/3) ||
			(len(lower) >= 3 && (strings.Contains(lc, lower) || strings.Contains(lower, lc)))
		if near && (bestDist < 0 || dist < bestDist) {
			best, bestDist = c, dist
		}
	}
	return best
}

// maxSuggestLen bounds the quadratic edit distance: a name this long is no typo of a short one.
const maxSuggestLen = 128

// didYouMean is the hint suffix for closest: `; did you mean "x"?`, or "" without a candidate.
func didYouMean(name string, candidates []string) string {
	if c := closest(name, candidates); c != "" && c != name {
		return fmt.Sprintf("; did you mean %s?", quote(c))
	}
	return ""
}

// editDistance is the Levenshtein distance between a and b, counted in bytes: names in the
// schema are ASCII, and for anything else the distance only decides whether to offer a hint.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
