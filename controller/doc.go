// Package controller owns the configuration loop: it loads the user's files, translates them,
// hands the result to the xDS server and watches the files for changes.
//
// It holds the only mutable view of "what is configured now". It does not decode YAML itself
// (package config), build Envoy resources (package translator), speak xDS (package xds) or
// manage processes (package supervisor).
package controller
