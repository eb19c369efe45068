package cmdutil

// Every instance command (up, down, status, logs, kubeconfig, install) takes
// the same --data-dir flag and the same --config file: a YAML file whose
// keys are flag names, read with urfave/cli's altsrc, so that a value set
// there reaches every command. Precedence: flag, then NODEBOOT_* variable,
// then the file, then the built-in default.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/urfave/cli/v2/altsrc"
	yamlv3 "gopkg.in/yaml.v3"
	"sigs.k8s.io/yaml"

	"github.com/nodeboot/nodeboot/internal/instance"
	"github.com/nodeboot/nodeboot/internal/safefs"
)

// DefaultConfig is the config file read when --config is not given. It
// may be missing.
const DefaultConfig = "/etc/nodeboot/config.yaml"

// maxConfig bounds the config file: a page of flag values.
const maxConfig = 1 << 20

// DataDirFlag is the --data-dir flag every instance command takes, read
// from the config file too (wrap the command with WithConfig).
func DataDirFlag(dest *string) cli.Flag {
	return altsrc.NewStringFlag(&cli.StringFlag{
		Name:        "data-dir",
		Usage:       "the node's data directory (`DIR`): fake tree, k3s data, kubeconfig, logs, state",
		Value:       instance.DefaultDataDir,
		EnvVars:     []string{"NODEBOOT_DATA_DIR"},
		Destination: dest,
	})
}

// configFlag is --config.
func configFlag() cli.Flag {
	return &cli.StringFlag{
		Name:    "config",
		Usage:   "read flag values from the YAML `FILE` (keys are flag names: data-dir: /srv/nb); flags win over NODEBOOT_* variables, which win over the file. A missing default file is fine",
		Value:   DefaultConfig,
		EnvVars: []string{"NODEBOOT_CONFIG"},
	}
}

// WithConfig adds --config to cmd and makes the values in the file the
// defaults of cmd's altsrc flags: precedence is flag, then NODEBOOT_*
// variable, then file, then the built-in default.
//
// The file is shared by every command, and only "up" has all the keys, so
// with strict (for "up") a key that is not a flag of cmd is a usage error,
// which catches typos; the other commands take the keys they know.
func WithConfig(cmd *cli.Command, strict bool) *cli.Command {
	cmd.Flags = append(cmd.Flags, configFlag())
	before := cmd.Before
	flags := cmd.Flags
	cmd.Before = func(cCtx *cli.Context) error {
		src, err := configSource(cCtx, cmd.Name, flags, strict)
		if err != nil {
			return err
		}
		if src != nil {
			if err := altsrc.ApplyInputSourceValues(cCtx, src, flags); err != nil {
				return UsageErrorf("%s: config %s: %v", cmd.Name, cCtx.String("config"), err)
			}
		}
		if before != nil {
			return before(cCtx)
		}
		return nil
	}
	return cmd
}

// configSource loads the --config file, or returns nil when the default
// file does not exist.
func configSource(cCtx *cli.Context, name string, flags []cli.Flag, strict bool) (altsrc.InputSourceContext, error) {
	path := cCtx.String("config")
	explicit := cCtx.IsSet("config")
	// Read once, a regular file of bounded size (--config /dev/zero ran
	// out of memory, a FIFO hung), and parse those bytes: altsrc's own
	// loader would open the path again (and fetch an http:// one).
	var b []byte
	var err error
	if path != os.DevNull { // --config /dev/null: no file, a common idiom
		b, err = safefs.ReadFile(path, maxConfig)
	}
	switch {
	case errors.Is(err, fs.ErrNotExist) && !explicit:
		return nil, nil
	case errors.Is(err, fs.ErrNotExist):
		return nil, UsageErrorf("%s: --config %s: no such file; create it or drop --config (the default %s may be missing)", name, path, DefaultConfig)
	case errors.Is(err, safefs.ErrNotRegular) || errors.Is(err, safefs.ErrTooLarge):
		return nil, UsageErrorf("%s: --config: %v", name, err)
	case err != nil:
		return nil, fmt.Errorf("%s: read config %s: %w", name, path, err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		return nil, UsageErrorf("%s: config %s: %v", name, path, oneLine(err.Error()))
	}
	var known []string
	for _, f := range flags {
		if _, ok := f.(altsrc.FlagInputSourceExtension); ok {
			known = append(known, f.Names()[0])
		}
	}
	for k := range m {
		if strict && !slices.Contains(known, k) {
			slices.Sort(known)
			return nil, UsageErrorf("%s: config %s: unknown key %q; the keys are the flag names: %s", name, path, k, strings.Join(known, ", "))
		}
	}
	// altsrc's own type errors are Go-typed ("Expected 'duration' but
	// actual is 'int'"); check the values first and say it in YAML.
	for _, f := range flags {
		key := f.Names()[0]
		v, ok := m[key]
		if !ok {
			continue
		}
		if err := checkValue(f, key, v); err != nil {
			return nil, UsageErrorf("%s: config %s: key %q: %v", name, path, key, err)
		}
	}
	var values map[any]any
	if err := yamlv3.Unmarshal(b, &values); err != nil {
		return nil, UsageErrorf("%s: config %s: %v", name, path, oneLine(err.Error()))
	}
	return altsrc.NewMapInputSource(path, values), nil
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// checkValue checks that v, the config file's value for the flag f (key),
// has the type the flag takes. Numbers arrive as float64 (sigs.k8s.io/yaml
// reads YAML as JSON).
func checkValue(f cli.Flag, key string, v any) error {
	switch f.(type) {
	case *altsrc.StringFlag, *altsrc.PathFlag, *altsrc.GenericFlag:
		if _, ok := v.(string); !ok {
			if _, scalar := v.(float64); scalar {
				return fmt.Errorf("want a string, got %s; quote it: %s: \"%v\"", describe(v), key, v)
			}
			return fmt.Errorf("want a string, got %s", describe(v))
		}
	case *altsrc.IntFlag, *altsrc.Int64Flag, *altsrc.UintFlag, *altsrc.Uint64Flag:
		if n, ok := v.(float64); !ok || n != float64(int64(n)) {
			return fmt.Errorf("want a whole number, e.g. %s: 5, got %s", key, describe(v))
		}
	case *altsrc.DurationFlag:
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("want a duration such as 5m, 90s or 1h30m, got %s", describe(v))
		}
		if _, err := time.ParseDuration(s); err != nil {
			return fmt.Errorf("%q is not a duration; write it like 5m, 90s or 1h30m", s)
		}
	case *altsrc.BoolFlag:
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("want true or false, got %s", describe(v))
		}
	case *altsrc.StringSliceFlag:
		list, ok := v.([]any)
		if !ok {
			return fmt.Errorf("want a list, e.g. %s: [a, b], got %s", key, describe(v))
		}
		for i, e := range list {
			if _, ok := e.(string); !ok {
				return fmt.Errorf("item %d: want a string, got %s", i+1, describe(e))
			}
		}
	}
	return nil
}

// describe names a YAML value for an error message.
func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "no value"
	case string:
		return fmt.Sprintf("the string %q", v)
	case float64:
		return fmt.Sprintf("the number %v", v)
	case bool:
		return fmt.Sprintf("%v", v)
	case []any:
		return "a list"
	case map[string]any:
		return "a map"
	}
	return fmt.Sprintf("%T", v)
}
