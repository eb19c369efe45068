// Package profile is the "nodeboot profile" command: "profile list" prints
// the built-in profiles and "profile show NAME|FILE" prints a profile with
// its base chain merged, as YAML that "nodeboot seed --profile" reads back.
package profile
