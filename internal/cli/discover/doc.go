// Package discover implements "nodeboot discover": run a command in observe
// mode and write the profile that would have satisfied it.
package discover
