package translator

import "strings"

// statNameEscaper escapes the characters that would break Envoy's statistics: Envoy splits a
// statistic's name on '.' to extract tags such as envoy_cluster_name, so a dot inside a name
// would cut it short, and it turns ':' into '_'. '%' is escaped so that the escaping can be
// undone exactly (metrics.UnescapeStatName), giving the user's names back as label values.
var statNameEscaper = strings.NewReplacer("%", "%25", ".", "%2E", ":", "%3A")

// StatName is the form of a user's name inside Envoy's statistic names: stat prefixes of
// Gateways and routes, virtual host names and Upstreams' alt_stat_name. Names without '.',
// ':' or '%' are unchanged.
func StatName(name string) string { return statNameEscaper.Replace(name) }
